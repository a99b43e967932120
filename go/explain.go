package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"tailscale.com/ipn"
)

// Messages that say what happened and what to do: a timeout names what
// the node was still waiting for, and a rejected login says whether a key
// was given at all.

// defaultControlURL is tsnet's control server when none is set.
const defaultControlURL = "https://controlplane.tailscale.com"

// timeoutError explains an operation whose deadline passed while err.
func (s *server) timeoutError(err error) error {
	return errorf(codeTimeout, "timed out: %v; %s", err, s.waitingFor())
}

// waitingFor describes what the node is waiting for, from its last known
// state, and what would end the wait.
func (s *server) waitingFor() string {
	state, loginURL := s.node.get()
	switch state {
	case ipn.NeedsLogin.String():
		if loginURL != "" {
			return fmt.Sprintf("the node is waiting for a login: open %s to log it in, "+
				"or give it an auth key (authkey=..., TS_AUTHKEY)", loginURL)
		}
		return s.controlUnanswered()
	case ipn.NeedsMachineAuth.String():
		return "the node is waiting for an admin of the tailnet to approve it (in the admin console's Machines page)"
	case ipn.Starting.String():
		return "the node has logged in and is still connecting to the tailnet: pass a larger timeout"
	case ipn.Running.String():
		return "the node is on the tailnet: check that the peer is online and that the tailnet's " +
			"policy lets this node reach it, or pass a larger timeout"
	}
	return s.controlUnanswered()
}

func (s *server) controlUnanswered() string {
	url := s.ts.ControlURL
	if url == "" {
		url = defaultControlURL
	}
	return fmt.Sprintf("the node has not heard from its control server (%s): check that it is reachable, "+
		"or pass a larger timeout", url)
}

// authError explains a login the control server rejected: with no auth
// key, the server requires one; with a key, the key is the problem.
func (s *server) authError(err error) error {
	if classify(err) != codeAuth {
		return err
	}
	reason := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "tsnet.Up: "), "backend: ")
	if s.ts.AuthKey == "" {
		return errorf(codeAuth, "the control server requires an auth key and none was given (it said %q): "+
			"pass one (authkey=..., TS_AUTHKEY)", reason)
	}
	return errorf(codeAuth, "the control server rejected the auth key (it said %q): check the key, "+
		"or make a new one (a single-use key works once, and an expired one not at all)", reason)
}

// deadlinePassed reports whether ctx ended because its deadline passed.
// deadline passed.
func deadlinePassed(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.DeadlineExceeded)
}
