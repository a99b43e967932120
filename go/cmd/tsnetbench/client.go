package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"time"
)

// sizes are the workload sizes; the harness passes the same ones to the
// Python clients.
type sizes struct {
	bulkBytes    int64
	chunk        int
	rttCount     int
	connectCount int
	streams      int
	streamBytes  int64
	udpCount     int
	udpSize      int
	warm         time.Duration
}

func (z *sizes) register(fs *flag.FlagSet) {
	fs.Int64Var(&z.bulkBytes, "bulk-bytes", 256<<20, "bytes sent by the bulk workload")
	fs.IntVar(&z.chunk, "chunk", 256<<10, "write and read size of the throughput workloads")
	fs.IntVar(&z.rttCount, "rtt-count", 10000, "1-byte round trips")
	fs.IntVar(&z.connectCount, "connect-count", 1000, "connections set up one after another")
	fs.IntVar(&z.streams, "streams", 100, "concurrent streams")
	fs.Int64Var(&z.streamBytes, "stream-bytes", 256<<20/100, "bytes sent on each concurrent stream")
	fs.IntVar(&z.udpCount, "udp-count", 50000, "datagrams sent")
	fs.IntVar(&z.udpSize, "udp-size", 1200, "datagram size")
	fs.DurationVar(&z.warm, "warm", 2*time.Second, "round trips before the workloads")
}

// client is node A: it runs workloads against a server at host.
type client struct {
	n    network
	host string
	z    sizes
	m    map[string]float64
}

func cmdClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	system := fs.String("system", "tsnet", "tsnet or loopback")
	host := fs.String("host", "", "the server's address")
	workloads := fs.String("workloads", "rtt,bulk,concurrent,udp,connect", "comma-separated")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the workloads here")
	c := client{m: map[string]float64{}}
	c.z.register(fs)
	fs.Parse(args)
	c.host = *host
	n, took, err := newNetwork(*system, "client")
	if err != nil {
		return err
	}
	c.n = n
	if *system == "tsnet" {
		c.m["startup_ms"] = ms(took)
	}
	if err := c.warm(c.z.warm); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if *cpuProfile != "" {
		stop, err := profile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	for _, w := range strings.Split(*workloads, ",") {
		if err := c.run(w); err != nil {
			return fmt.Errorf("%s: %w", w, err)
		}
	}
	return emit(c.m)
}

func profile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func (c *client) run(workload string) error {
	switch workload {
	case "bulk":
		return c.bulk()
	case "rtt":
		return c.roundTrips()
	case "connect":
		return c.connects()
	case "concurrent":
		return c.concurrent()
	case "udp":
		return c.datagrams()
	}
	return errors.New("unknown workload")
}

// bulk: one connection to the sink; bulkBytes in chunk-sized writes, a
// half-close, and the sink's 1-byte answer; timed from the first write to
// that answer.
func (c *client) bulk() error {
	conn, err := c.n.dial(c.host, portSink)
	if err != nil {
		return err
	}
	defer conn.Close()
	start := time.Now()
	if err := sendAndAwait(conn, c.z.bulkBytes, c.z.chunk); err != nil {
		return err
	}
	c.m["bulk_mbps"] = mbps(c.z.bulkBytes, time.Since(start))
	return nil
}

// sendAndAwait writes total bytes in chunk-sized writes, half-closes and
// reads the sink's 1-byte answer.
func sendAndAwait(conn net.Conn, total int64, chunk int) error {
	buf := make([]byte, chunk)
	for sent := int64(0); sent < total; {
		k := min(int64(chunk), total-sent)
		if _, err := conn.Write(buf[:k]); err != nil {
			return err
		}
		sent += k
	}
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("connection cannot half-close")
	}
	if err := cw.CloseWrite(); err != nil {
		return err
	}
	_, err := io.ReadFull(conn, buf[:1])
	return err
}

func mbps(n int64, d time.Duration) float64 {
	return float64(n) / d.Seconds() / 1e6
}

// roundTrips: one connection to the echo service; 1 byte out, 1 byte back,
// one after another: warmup untimed, then rttCount timed.
func (c *client) roundTrips() error {
	ping, done, err := c.pinger()
	if err != nil {
		return err
	}
	defer done()
	samples := make([]time.Duration, 0, c.z.rttCount)
	for i := range warmup + c.z.rttCount {
		d, err := ping()
		if err != nil {
			return err
		}
		if i >= warmup {
			samples = append(samples, d)
		}
	}
	c.m["rtt_p50_us"], c.m["rtt_p99_us"] = percentileUS(samples, 50), percentileUS(samples, 99)
	return nil
}

// warm runs round trips for d. The first packets to a peer go through the
// DERP relay until the direct path is found; the workloads start once it
// has settled.
func (c *client) warm(d time.Duration) error {
	ping, done, err := c.pinger()
	if err != nil {
		return err
	}
	defer done()
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, err := ping(); err != nil {
			return err
		}
	}
	return nil
}

// pinger connects to the echo service and returns a timed 1-byte round
// trip, and a function closing the connection.
func (c *client) pinger() (func() (time.Duration, error), func(), error) {
	conn, err := c.n.dial(c.host, portEcho)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, 1)
	ping := func() (time.Duration, error) {
		start := time.Now()
		if _, err := conn.Write(buf); err != nil {
			return 0, err
		}
		_, err := io.ReadFull(conn, buf)
		return time.Since(start), err
	}
	return ping, func() { conn.Close() }, nil
}

const warmup = 100

// connects: connectCount connections to the greeter, one after another,
// each timed from the start of the dial until its 1 byte has been read;
// the client then closes it.
func (c *client) connects() error {
	buf := make([]byte, 1)
	samples := make([]time.Duration, 0, c.z.connectCount)
	for range c.z.connectCount {
		start := time.Now()
		conn, err := c.n.dial(c.host, portGreet)
		if err != nil {
			return err
		}
		_, err = io.ReadFull(conn, buf)
		samples = append(samples, time.Since(start))
		conn.Close()
		if err != nil {
			return err
		}
	}
	c.m["connect_p50_us"], c.m["connect_p99_us"] = percentileUS(samples, 50), percentileUS(samples, 99)
	return nil
}

// concurrent: streams connections to the sink are opened first; then each
// sends streamBytes as bulk does, all at once; timed from the start until
// the last answer.
func (c *client) concurrent() error {
	conns := make([]net.Conn, 0, c.z.streams)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for range c.z.streams {
		conn, err := c.n.dial(c.host, portSink)
		if err != nil {
			return err
		}
		conns = append(conns, conn)
	}
	start := time.Now()
	errs := make(chan error, len(conns))
	for _, conn := range conns {
		go func() { errs <- sendAndAwait(conn, c.z.streamBytes, c.z.chunk) }()
	}
	for range conns {
		if err := <-errs; err != nil {
			return err
		}
	}
	c.m["concurrent_mbps"] = mbps(c.z.streamBytes*int64(len(conns)), time.Since(start))
	return nil
}

// datagrams: udpCount datagrams of udpSize bytes sent as fast as possible
// to the server, which counts them. Rate = datagrams received per second
// between the first and last arrival; loss = share never received. A round
// is begun and ended on the control connection; the path is warmed first
// with 1-byte datagrams until one is answered.
func (c *client) datagrams() error {
	ctl, err := c.n.dial(c.host, portControl)
	if err != nil {
		return err
	}
	defer ctl.Close()
	lines := bufio.NewReader(ctl)
	if _, err := ask(ctl, lines, fmt.Sprintf("begin %d", c.z.udpSize)); err != nil {
		return err
	}
	pc, err := c.n.listenPacket(0)
	if err != nil {
		return err
	}
	defer pc.Close()
	to, err := udpAddr(c.host, portUDP)
	if err != nil {
		return err
	}
	if err := warmDatagrams(pc, to); err != nil {
		return err
	}
	stalls, err := sendDatagrams(pc, to, make([]byte, c.z.udpSize), c.z.udpCount)
	if err != nil {
		return err
	}
	c.m["udp_stalls"] = float64(stalls)
	reply, err := ask(ctl, lines, fmt.Sprintf("end %d", c.z.udpCount))
	if err != nil {
		return err
	}
	var got int
	var seconds float64
	if _, err := fmt.Sscanf(reply, "%d %g", &got, &seconds); err != nil {
		return fmt.Errorf("control answer %q: %w", reply, err)
	}
	c.m["udp_pps"] = 0
	if got > 1 && seconds > 0 {
		c.m["udp_pps"] = float64(got-1) / seconds
	}
	c.m["udp_loss"] = 1 - float64(got)/float64(c.z.udpCount)
	return nil
}

// udpWriteWait bounds each datagram write. gVisor's UDPConn.WriteTo can
// wait forever once the socket's send buffer was full: it subscribes to
// "writable" only after its write failed, so it misses a wakeup that came
// in between. A write that times out is retried (and counted as a stall).
const udpWriteWait = 5 * time.Millisecond

// sendDatagrams sends payload count times to addr.
func sendDatagrams(pc net.PacketConn, to net.Addr, payload []byte, count int) (stalls int, err error) {
	for sent := 0; sent < count; {
		if sent%16 == 0 {
			pc.SetWriteDeadline(time.Now().Add(udpWriteWait))
		}
		_, err := pc.WriteTo(payload, to)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			stalls++
			pc.SetWriteDeadline(time.Now().Add(udpWriteWait))
			continue
		}
		if err != nil {
			return stalls, err
		}
		sent++
	}
	return stalls, nil
}

// ask sends one control line and reads the answer.
func ask(ctl net.Conn, lines *bufio.Reader, line string) (string, error) {
	if _, err := fmt.Fprintf(ctl, "%s\n", line); err != nil {
		return "", err
	}
	reply, err := lines.ReadString('\n')
	reply = strings.TrimSpace(reply)
	if err == nil && strings.HasPrefix(reply, "error") {
		err = errors.New(reply)
	}
	return reply, err
}

// warmDatagrams sends 1-byte datagrams every 10 ms until one is answered.
func warmDatagrams(pc net.PacketConn, to net.Addr) error {
	buf := make([]byte, 64)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if _, err := pc.WriteTo([]byte{0}, to); err != nil {
			return err
		}
		pc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, _, err := pc.ReadFrom(buf); err == nil {
			return pc.SetReadDeadline(time.Time{})
		}
	}
	return errors.New("no datagram was answered within 30 s")
}

// percentileUS is the nearest-rank percentile of samples, in microseconds.
func percentileUS(samples []time.Duration, pct int) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (pct*len(s) + 99) / 100 // ceil(pct/100 * n)
	return float64(s[max(rank, 1)-1]) / float64(time.Microsecond)
}
