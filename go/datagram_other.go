//go:build !linux

package main

// Without Linux's SO_PASSCRED nothing tells an empty message from
// end-of-file, so an empty datagram written to a connected UDP descriptor
// ends it.
var credentialsSpace = 0

func passCredentials(mine, theirs int, both bool) error { return nil }
