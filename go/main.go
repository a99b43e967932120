// Command libtailnet is the C-shared library behind the tailnet Python
// package: a thin, handle-based C API over tailscale.com/tsnet.
//
// Built with -buildmode=c-shared; main is never run. The C contract is
// documented in tailscale.h; every exported function lives in one of the
// exports*.go files, one per area (exports_node.go, exports_packet.go, ...;
// the local tailnet's are left out by -tags tailnet_no_localnet), and does
// nothing but translate C arguments and errors.
package main

func main() {}
