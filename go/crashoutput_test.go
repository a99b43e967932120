package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const crashChildEnv = "TAILNET_TEST_CRASH_CHILD"

// A goroutine's unrecovered panic kills the process; with the variable set,
// its report is in the file as well as on stderr.
func TestCrashOutputKeepsTheReport(t *testing.T) {
	if os.Getenv(crashChildEnv) == "1" {
		done := make(chan struct{})
		go func() {
			defer close(done)
			panic("a fatal error for TestCrashOutputKeepsTheReport")
		}()
		<-done
		return
	}
	path := filepath.Join(t.TempDir(), "crash.txt")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashOutputKeepsTheReport$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashOutputEnv+"="+path, "GOTRACEBACK=single")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child did not crash:\n%s", out)
	}
	report, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"panic: a fatal error for TestCrashOutputKeepsTheReport", "goroutine"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
}

// A file that cannot be opened is reported, and the library loads anyway.
func TestCrashOutputUnopenable(t *testing.T) {
	if err := setCrashOutput(filepath.Join(t.TempDir(), "missing", "crash.txt")); err == nil {
		t.Fatal("no error for a file in a missing directory")
	}
}
