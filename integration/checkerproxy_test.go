package integration

// dropProxy, the checker's TCP fault: a proxy between the clients and PostgreSQL that, when armed, cuts
// a connection right after it forwarded a COMMIT (or, armed for any statement, a simple query or the Sync
// that ends an extended-protocol statement) to the server, before the answer comes back. The server still
// runs what it received, so the client sees a broken connection for work that may well have committed:
// an unknown outcome (issue 10, defect 4).

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// dropProxy forwards 127.0.0.1:port to a PostgreSQL server.
type dropProxy struct {
	ln       net.Listener
	upstream string
	// armedCommit and armedAny count the cuts still to make: after the next COMMIT, after the next
	// statement of any kind.
	armedCommit, armedAny atomic.Int64
	cuts                  atomic.Int64 // connections cut so far
	wg                    sync.WaitGroup
	mu                    sync.Mutex
	conns                 map[net.Conn]bool
}

// startDropProxy listens on a free local port; it is closed at cleanup.
func startDropProxy(t testing.TB, upstream string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &dropProxy{ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *dropProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *dropProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *dropProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *dropProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, true)
		p.track(server, true)
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(client, server)
			client.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.forward(client, server)
			client.Close()
			server.Close()
			p.track(client, false)
			p.track(server, false)
		}()
	}
}

// forward copies the client's messages to the server one by one and cuts both sides after a message
// that an armed cut is waiting for.
func (p *dropProxy) forward(client, server net.Conn) {
	// The startup message has no type byte: a length (including itself), then the body.
	var n [4]byte
	if _, err := io.ReadFull(client, n[:]); err != nil {
		return
	}
	body := make([]byte, binary.BigEndian.Uint32(n[:])-4)
	if _, err := io.ReadFull(client, body); err != nil {
		return
	}
	if _, err := server.Write(append(n[:], body...)); err != nil {
		return
	}
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(client, hdr[:]); err != nil {
			return
		}
		msg := make([]byte, 5+binary.BigEndian.Uint32(hdr[1:])-4)
		copy(msg, hdr[:])
		if _, err := io.ReadFull(client, msg[5:]); err != nil {
			return
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
		if p.cutAfter(hdr[0], msg[5:]) {
			p.cuts.Add(1)
			return
		}
	}
}

// cutAfter decides whether the message just forwarded (type typ) ends the connection.
func (p *dropProxy) cutAfter(typ byte, body []byte) bool {
	statement := typ == 'Q' || typ == 'S'
	isCommit := typ == 'Q' && bytes.HasPrefix(bytes.ToUpper(bytes.TrimSpace(body)), []byte("COMMIT"))
	take := func(c *atomic.Int64) bool {
		for {
			v := c.Load()
			if v <= 0 {
				return false
			}
			if c.CompareAndSwap(v, v-1) {
				return true
			}
		}
	}
	return (isCommit && take(&p.armedCommit)) || (statement && take(&p.armedAny))
}
