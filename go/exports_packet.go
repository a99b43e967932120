package main

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

// Datagram (UDP) sockets: see datagram.go. A connected UDP socket comes from
// tailnet_dial with network "udp".

//export tailnet_listen_packet
func tailnet_listen_packet(h C.int64_t, network, addr *C.char, sockOut *C.int64_t, fdOut *C.int, bound *C.char, boundlen C.size_t, errbuf *C.char, errlen C.size_t) (rc C.int) {
	defer guard(&rc, errbuf, errlen)
	s, err := lookup[*server](int64(h))
	if err == nil {
		err = needOut("socket/fd", sockOut == nil || fdOut == nil)
	}
	nw, ad := goString(network), goString(addr)
	if err == nil {
		err = checkListenPacket(nw, ad)
	}
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	d, fd, text, err := s.listenPacket(nw, ad)
	if err != nil {
		return fail(err, errbuf, errlen)
	}
	*sockOut = C.int64_t(newHandle(d))
	*fdOut = C.int(fd)
	copyOut(text, bound, boundlen)
	return fail(nil, errbuf, errlen)
}

//export tailnet_packet_close
func tailnet_packet_close(h C.int64_t) (rc C.int) {
	defer guard(&rc, nil, 0)
	d, err := lookup[*dgramSocket](int64(h))
	if err == nil {
		dropHandle(int64(h))
		d.close()
	}
	return fail(err, nil, 0)
}
