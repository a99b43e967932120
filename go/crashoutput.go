package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// crashOutputEnv names a file that gets a copy of the report of any fatal
// error in the library (an unrecovered panic, a runtime fault). A Go
// runtime that does not own the process aborts it after such an error,
// and writes the report only to descriptor 2, where a test runner's or a
// service manager's capture may lose it with the process. The file is
// opened for appending when the library is loaded, so one file can
// collect the reports of a process and its children. The variable must be
// in the environment the process started with: the runtime reads its own
// copy of it, and Python's later os.environ changes are not in it.
const crashOutputEnv = "TAILNET_CRASH_OUTPUT"

func init() {
	path := os.Getenv(crashOutputEnv)
	if path == "" {
		return
	}
	if err := setCrashOutput(path); err != nil {
		fmt.Fprintf(os.Stderr, "tailnet: %s: %v\n", crashOutputEnv, err)
	}
}

func setCrashOutput(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close() // SetCrashOutput keeps a duplicate of its own
	return debug.SetCrashOutput(f, debug.CrashOptions{})
}
