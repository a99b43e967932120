//go:build !tailnet_no_localnet

package main

import (
	"fmt"
	"html"
	"net/http"
)

// frontDoor is what the control server's port answers over plain HTTP.
//
// testcontrol handles a request it does not know by panicking in a
// goroutine of its own, which nothing can recover: a browser opening a
// node's login URL (or asking for /favicon.ico), or curl on any other
// path, would take the whole host process down. So only the requests a
// node makes before its Noise channel is up reach it (everything after
// travels inside that channel, straight to testcontrol); /auth/ completes
// an interactive login, as a real control server's login page would;
// /acme/ refuses certificate requests (localcerts.go); the rest get 404.
func (n *localnet) frontDoor() http.Handler {
	mux := http.NewServeMux()
	for _, path := range []string{"/key", "/ts2021", "/generate_204"} {
		mux.Handle(path, n.control)
	}
	mux.HandleFunc("/auth/", n.serveLogin)
	mux.HandleFunc("/acme/", serveNoACME)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("%s is not a page of this local tailnet's control server", r.URL.Path),
			http.StatusNotFound)
	})
	return mux
}

// serveLogin completes the interactive login waiting at the requested
// URL: opening a login URL in a browser logs the node in.
func (n *localnet) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	if !n.control.CompleteAuth(r.URL.Path) {
		http.Error(w, "no login is waiting at this URL (it was completed already, or never issued)",
			http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><title>Logged in</title><h1>Logged in</h1>"+
		"<p>The node that showed %s is joining the local tailnet. You can close this page.</p>\n",
		html.EscapeString(r.URL.Path))
}
