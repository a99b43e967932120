// Command libtailnet is the C-shared library behind the tailnet Python
// package: a thin, handle-based C API over tailscale.com/tsnet.
//
// Built with -buildmode=c-shared; main is never run. The C contract is
// documented in tailscale.h; every exported function lives in exports.go
// and does nothing but translate C arguments and errors.
package main

func main() {}
