package solidcable_test

// Real databases for the tests: SQLite files in temp dirs, and a database
// of its own per test on the PostgreSQL (127.0.0.1:5432, trust auth,
// database test) and MariaDB (127.0.0.1:3306, root without a password,
// database test) that run on the project's machines.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/railsconfig"
	"github.com/gocable/gocable/cable/solidcable"
)

// testDB is one test's database: cfg opens it (through addr when a proxy
// stands in front of it), and the table exists, made as the gem's schema
// makes it.
type testDB struct {
	dialect solidcable.Dialect
	cfg     *railsconfig.Database
	appRoot string
}

// dialects are the databases every test runs on.
var dialects = []solidcable.Dialect{solidcable.SQLite, solidcable.PostgreSQL, solidcable.MySQL}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newTestDB makes a database of its own for t and creates the messages
// table in it. A server that is not running fails the test: the project's
// machines run both.
func newTestDB(t testing.TB, d solidcable.Dialect) *testDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tdb := &testDB{dialect: d}
	switch d {
	case solidcable.SQLite:
		tdb.appRoot = t.TempDir()
		if err := os.MkdirAll(filepath.Join(tdb.appRoot, "storage"), 0o755); err != nil {
			t.Fatal(err)
		}
		tdb.cfg = &railsconfig.Database{Adapter: "sqlite3", Database: "storage/production_cable.sqlite3", Params: map[string]string{"timeout": "5000"}}
	case solidcable.PostgreSQL:
		admin := &railsconfig.Database{Adapter: "postgresql", Host: "127.0.0.1", Port: 5432, Username: "postgres", Database: "test", Params: map[string]string{}}
		schema := randomName("sc_")
		execAdmin(t, ctx, admin, "CREATE SCHEMA "+schema)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			execAdmin(t, ctx, admin, "DROP SCHEMA "+schema+" CASCADE")
		})
		tdb.cfg = &railsconfig.Database{Adapter: "postgresql", Host: "127.0.0.1", Port: 5432, Username: "postgres", Database: "test", Params: map[string]string{"schema_search_path": schema}}
	case solidcable.MySQL:
		admin := &railsconfig.Database{Adapter: "mysql2", Host: "127.0.0.1", Port: 3306, Username: "root", Database: "test", Params: map[string]string{}}
		name := randomName("sc_")
		execAdmin(t, ctx, admin, "CREATE DATABASE "+name)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			execAdmin(t, ctx, admin, "DROP DATABASE "+name)
		})
		tdb.cfg = &railsconfig.Database{Adapter: "mysql2", Host: "127.0.0.1", Port: 3306, Username: "root", Database: name, Params: map[string]string{}}
	}
	db := tdb.open(t)
	if err := solidcable.CreateTable(ctx, db, d, ""); err != nil {
		t.Fatal(err)
	}
	return tdb
}

// open opens the test's database; the test closes it at its end.
func (tdb *testDB) open(t testing.TB) *sql.DB {
	t.Helper()
	db, d, err := solidcable.Open(tdb.cfg, tdb.appRoot)
	if err != nil {
		t.Fatal(err)
	}
	if d != tdb.dialect {
		t.Fatalf("Open: dialect %v; want %v", d, tdb.dialect)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// via returns a copy of tdb that connects through addr (a proxy).
func (tdb *testDB) via(addr string) *testDB {
	c := *tdb
	cfg := *tdb.cfg
	host, port, _ := net.SplitHostPort(addr)
	cfg.Host = host
	fmt.Sscan(port, &cfg.Port)
	c.cfg = &cfg
	return &c
}

func execAdmin(t testing.TB, ctx context.Context, cfg *railsconfig.Database, stmt string) {
	t.Helper()
	db, _, err := solidcable.Open(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// proxy is a TCP proxy on loopback in front of a database server, that a
// test cuts to make the database unreachable and restores.
type proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, addr: ln.Addr().String(), conns: make(map[net.Conn]bool)}
	p.serve(ln)
	t.Cleanup(func() {
		p.cut()
		done := make(chan struct{})
		go func() { p.wg.Wait(); close(done) }() // ends once the proxy's goroutines have
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the proxy's goroutines did not end")
		}
	})
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() { // ended by cut, which closes ln
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut meanwhile
				p.mu.Unlock()
				_, _ = c.Close(), up.Close()
				continue
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }() // ends when either side closes
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

// cut closes the listener and every connection: the database is gone.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// restore listens again on the same address.
func (p *proxy) restore(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}
