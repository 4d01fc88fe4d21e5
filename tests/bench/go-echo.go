// go-echo: the idiomatic Go echo server, for `make bench` only (a peer of echo-server:
// what a user might write instead).
//
//	go-echo [--listen HOST:PORT] [--port-file PATH]
//
// net.Listen, one goroutine per connection, a blocking Read/Write loop over one
// 16384-byte buffer per connection (BENCH_READ_SIZE in benchnet.h). Go's runtime does the
// rest: nonblocking sockets on its epoll netpoller, TCP_NODELAY set on every connection
// (Go's default for TCP), and the listen backlog read from net.core.somaxconn (4096 by
// default, the bench's BENCH_BACKLOG; Go gives no way to choose it). The bench runs it
// with GOMAXPROCS=1 (one thread runs Go code at a time, like the single-threaded C
// servers); the runtime's other threads (sysmon, the garbage collector's) still run,
// which is why the bench reads a server's CPU time from its cgroup.
//
// A single-file main package with no imports outside the standard library: it builds
// offline with GO111MODULE=off (bench.mk). SIGTERM ends it (Go's default action).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"
)

const readSize = 16384

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or a failure
			return
		}
	}
}

// writePortFile writes the listener's port through path.tmp and a rename, so the bench
// never reads a partial file.
func writePortFile(path string, ln net.Listener) error {
	tmp := path + ".tmp"
	port := ln.Addr().(*net.TCPAddr).Port
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", port)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:7100", "HOST:PORT to listen on")
	portFile := flag.String("port-file", "", "where to write the port once listening")
	flag.Parse()
	ln, err := net.Listen("tcp4", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-echo: %v\n", err)
		os.Exit(2)
	}
	if *portFile != "" {
		if err := writePortFile(*portFile, ln); err != nil {
			fmt.Fprintf(os.Stderr, "go-echo: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Printf("go-echo: %s GOMAXPROCS=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	for {
		c, err := ln.Accept()
		if err != nil {
			// EMFILE and the like: back off instead of spinning (as net/http does).
			fmt.Fprintf(os.Stderr, "go-echo: accept: %v\n", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}
