package main

import (
	"bufio"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestReturnCodesMatchTheHeader checks that the return codes in errors.go
// (every constant named code*) and the TAILNET_OK / TAILNET_ERR_* defines
// in tailscale.h's CDEF section are the same list: every name on one side
// has its counterpart on the other, with the same value. Names map
// mechanically: codeAddrInUse <-> TAILNET_ERR_ADDR_IN_USE, codeOK <->
// TAILNET_OK.
func TestReturnCodesMatchTheHeader(t *testing.T) {
	header := headerReturnCodes(t, "tailscale.h")
	goCodes := goReturnCodes(t)
	if len(header) == 0 || len(goCodes) == 0 {
		t.Fatalf("found %d codes in tailscale.h and %d in the Go files: the parsing is broken", len(header), len(goCodes))
	}
	fromGo := make(map[string]int64) // header name -> Go value
	goNameOf := make(map[string]string)
	for name, value := range goCodes {
		h := headerCodeName(name)
		if other, dup := goNameOf[h]; dup {
			t.Errorf("%s and %s both map to %s", name, other, h)
		}
		goNameOf[h] = name
		fromGo[h] = value
	}
	for _, h := range slices.Sorted(maps.Keys(header)) {
		value, ok := fromGo[h]
		switch {
		case !ok:
			t.Errorf("tailscale.h defines %s (%d), but there is no Go constant %s", h, header[h], goCodeName(h))
		case value != header[h]:
			t.Errorf("%s is %d in tailscale.h but %s is %d in Go", h, header[h], goNameOf[h], value)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(fromGo)) {
		if _, ok := header[h]; !ok {
			t.Errorf("Go has %s (%d), but tailscale.h does not define %s", goNameOf[h], fromGo[h], h)
		}
	}
}

var defineRE = regexp.MustCompile(`^\s*#\s*define\s+(TAILNET_(?:OK|ERR_\w+))\b(.*)$`)

// headerReturnCodes reads the TAILNET_OK and TAILNET_ERR_* defines
// between the header's BEGIN CDEF and END CDEF markers.
func headerReturnCodes(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	codes := make(map[string]int64)
	inCdef, sawEnd := false, false
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		text := scanner.Text()
		switch strings.TrimSpace(text) {
		case "/* BEGIN CDEF */":
			inCdef = true
			continue
		case "/* END CDEF */":
			inCdef, sawEnd = false, true
			continue
		}
		m := defineRE.FindStringSubmatch(text)
		if !inCdef || m == nil {
			continue
		}
		name, rest := m[1], m[2]
		if i := strings.Index(rest, "/*"); i >= 0 {
			rest = rest[:i]
		}
		value, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		if err != nil {
			t.Errorf("%s:%d: %s is not a plain integer: %q", path, line, name, strings.TrimSpace(rest))
			continue
		}
		if _, dup := codes[name]; dup {
			t.Errorf("%s:%d: %s defined twice", path, line, name)
		}
		codes[name] = value
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if !sawEnd {
		t.Fatalf("%s: no BEGIN CDEF ... END CDEF section", path)
	}
	return codes
}

// goReturnCodes reads every constant named code* (code followed by an
// upper-case letter) from the package's non-test Go files, whatever their
// build tags, and evaluates it.
func goReturnCodes(t *testing.T) map[string]int64 {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	codes := make(map[string]int64)
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, ident := range vs.Names {
					if !isGoCodeName(ident.Name) {
						continue
					}
					pos := fset.Position(ident.Pos())
					if i >= len(vs.Values) {
						t.Errorf("%s: %s has no value of its own", pos, ident.Name)
						continue
					}
					// A self-contained constant expression (-1): one that
					// names other constants would not evaluate here.
					tv, err := types.Eval(fset, nil, token.NoPos, types.ExprString(vs.Values[i]))
					if err != nil || tv.Value == nil {
						t.Errorf("%s: cannot evaluate %s: %v", pos, ident.Name, err)
						continue
					}
					value, exact := constant.Int64Val(constant.ToInt(tv.Value))
					if !exact {
						t.Errorf("%s: %s is not an integer: %s", pos, ident.Name, tv.Value)
						continue
					}
					if _, dup := codes[ident.Name]; dup {
						t.Errorf("%s: %s defined twice", pos, ident.Name)
					}
					codes[ident.Name] = value
				}
			}
		}
	}
	return codes
}

func isGoCodeName(name string) bool {
	rest, ok := strings.CutPrefix(name, "code")
	return ok && rest != "" && unicode.IsUpper(rune(rest[0]))
}

// headerCodeName maps codeAddrInUse to TAILNET_ERR_ADDR_IN_USE and codeOK
// to TAILNET_OK: a word starts at each upper-case letter that follows a
// lower-case letter or a digit.
func headerCodeName(goName string) string {
	rest := strings.TrimPrefix(goName, "code")
	if rest == "OK" {
		return "TAILNET_OK"
	}
	var b strings.Builder
	for i, r := range rest {
		if i > 0 && unicode.IsUpper(r) {
			prev := rune(rest[i-1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return "TAILNET_ERR_" + b.String()
}

// goCodeName is headerCodeName backwards, for messages.
func goCodeName(headerName string) string {
	if headerName == "TAILNET_OK" {
		return "codeOK"
	}
	var b strings.Builder
	b.WriteString("code")
	for _, word := range strings.Split(strings.TrimPrefix(headerName, "TAILNET_ERR_"), "_") {
		if word != "" {
			b.WriteString(word[:1] + strings.ToLower(word[1:]))
		}
	}
	return b.String()
}
