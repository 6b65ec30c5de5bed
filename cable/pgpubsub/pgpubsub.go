package pgpubsub

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gocable/gocable/cable/internal/pubsubkit"

	"github.com/gocable/gocable/cable"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxPayload is the largest payload, in bytes, that PostgreSQL's NOTIFY
// carries with its default 8 kB pages: the server refuses a payload of
// 8,000 bytes or more with "payload string too long"
// (src/backend/commands/async.c, NOTIFY_PAYLOAD_MAX_LENGTH), and so does
// Rails' adapter, which sends NOTIFY as it is.
const MaxPayload = 7999

var (
	// ErrClosed is returned by PubSub methods after Close.
	ErrClosed = errors.New("pgpubsub: closed")

	// ErrUnavailable is wrapped into the errors of Publish and Subscribe
	// when they fail while the listener connection to PostgreSQL is down,
	// so that callers can tell an outage from a bad request with
	// errors.Is.
	ErrUnavailable = errors.New("pgpubsub: postgresql unavailable")

	// ErrPayloadTooLarge is wrapped into the error of Publish when the
	// payload is longer than MaxPayload bytes. Nothing is sent.
	ErrPayloadTooLarge = errors.New("pgpubsub: payload too large for NOTIFY")

	// ErrInvalidStream is wrapped into the errors of Publish and Subscribe
	// for a channel name PostgreSQL cannot LISTEN on: empty, not UTF-8,
	// or holding a NUL byte.
	ErrInvalidStream = errors.New("pgpubsub: invalid channel name")
)

// opError is the error of a PubSub operation on a channel: its message
// reads `pgpubsub: <op> "<channel>": <kind>: <err>`, and it wraps both
// kind (a sentinel such as ErrUnavailable, or nil) and err.
type opError = pubsubkit.OpError

// Config configures a PubSub. The zero value is a valid configuration: no
// channel prefix, slog.Default, Rails 6.1–8.1 channel naming, and the
// defaults below.
type Config struct {
	// ChannelPrefix is prepended to every stream name, followed by ":", as
	// Rails' channel_prefix setting in config/cable.yml does; Rails'
	// PostgreSQL adapter prepends ChannelPrefix in every version from 6.1
	// (actioncable/lib/action_cable/subscription_adapter/channel_prefix.rb).
	// nil means no prefix; a pointer to "" is an empty prefix, as in Rails:
	// stream "chat" becomes ":chat".
	ChannelPrefix *string

	// HashByBytes makes a channel name longer than 63 bytes hashed, as
	// Rails' main branch does since commit 5b41c8a ("Hash PostgreSQL cable
	// channel identifiers by byte size"). false, the default, hashes a name
	// longer than 63 characters, as every released Rails from 6.1 to 8.1
	// does (postgresql.rb, channel_identifier: channel.size > 63). The two
	// differ only for names with non-ASCII characters.
	HashByBytes bool

	// Logger receives the outage and recovery messages and panics in
	// deliver functions. nil means slog.Default().
	Logger *slog.Logger

	// MinBackoff and MaxBackoff bound the delay between reconnection
	// attempts of the listener, which doubles from MinBackoff up to
	// MaxBackoff, jittered to between half and all of its value. Zero means
	// 100ms and 2s.
	MinBackoff, MaxBackoff time.Duration

	// HealthCheckInterval is how long the listener connection may stay
	// silent before it is sent an empty query; a query that fails or gets
	// no answer within QueryTimeout ends the connection, which is then
	// replaced. Zero means 5s; a negative value disables the check.
	HealthCheckInterval time.Duration

	// QueryTimeout bounds each round trip to PostgreSQL: connecting, a
	// batch of LISTEN or UNLISTEN, a NOTIFY, a health check. Zero means 5s.
	QueryTimeout time.Duration

	// MaxPublishConns is the size of the pool of connections that Publish
	// uses, besides the one listener connection. Zero means 4.
	MaxPublishConns int32

	// ApplicationName is the application_name of the listener connection,
	// as seen in pg_stat_activity; Rails sets "ActionCable-PID-<pid>"
	// (subscription_adapter/base.rb, identifier). "" means
	// "gocable-PID-<pid>".
	ApplicationName string
}

// State is the state of a PubSub's listener connection, as returned by
// PubSub.State. Its zero value is StateConnecting.
type State = pubsubkit.State

const (
	// StateConnecting means the first connection has not been made yet.
	StateConnecting = pubsubkit.Connecting
	// StateUp means the listener connection is established and LISTENs on
	// every channel in use.
	StateUp = pubsubkit.Up
	// StateDown means the connection was lost or could not be made; it is
	// being retried with backoff.
	StateDown = pubsubkit.Down
	// StateClosed means Close was called.
	StateClosed = pubsubkit.Closed
)

// PubSub is a cable.PubSub over PostgreSQL LISTEN and NOTIFY,
// wire-compatible with Rails' postgresql subscription adapter; the package
// documentation describes its compatibility, its at-most-once delivery and
// its behaviour during outages.
//
// New starts one goroutine, the listener, owned by the PubSub and ended by
// Close, which waits for it: the only user of the listener connection, it
// connects, reconnects, LISTENs and calls every deliver function, so calls
// to deliver never overlap, for any stream. The publishing pool's own
// background goroutine (pgxpool's health check) also ends with Close. A
// panic in deliver is recovered and logged. The unsubscribe function
// returned by Subscribe must not be called from within a deliver function
// (it waits for deliver to return).
//
// A PubSub is safe for concurrent use. The zero value is not usable; create
// a PubSub with New and stop it with Close.
type PubSub struct {
	prefix       *string
	byBytes      bool
	log          *slog.Logger
	minBackoff   time.Duration
	maxBackoff   time.Duration
	healthEvery  time.Duration
	queryTimeout time.Duration
	connConfig   *pgx.ConnConfig
	pool         *pgxpool.Pool
	target       string // host:port/database, for the log

	cancel    context.CancelFunc // ends the listener
	done      <-chan struct{}    // closed by Close
	wg        sync.WaitGroup     // the listener
	closeOnce sync.Once

	state atomic.Int32 // a State

	mu       sync.Mutex
	closed   bool
	channels map[string]*channelState // by PostgreSQL channel name
	dirty    bool                     // channels changed since the listener's last sync
	wake     context.CancelFunc       // interrupts the listener's wait; nil when not waiting
}

// channelState is one PostgreSQL channel. It is guarded by PubSub.mu.
type channelState struct {
	subs map[*subscriber]struct{}
	// ready is closed once the channel is LISTENed on the current
	// session; isReady tells whether it is.
	ready   chan struct{}
	isReady bool
}

// subscriber is one Subscribe call. Its mutex makes deliver and unsubscribe
// exclusive, so that deliver is never called after unsubscribe has returned.
type subscriber struct {
	mu      sync.Mutex
	deliver func([]byte)
	done    bool
}

var _ cable.PubSub = (*PubSub)(nil)

// New returns a PubSub on the PostgreSQL database that connString names (a
// postgres:// URL or a key=value string, as libpq and pgx read them) and
// starts connecting its listener in the background (see State). It fails
// only when connString cannot be parsed; a database that is down is
// retried forever.
func New(connString string, cfg Config) (*PubSub, error) {
	poolConfig, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgconn's error quotes the string with its password redacted.
		return nil, fmt.Errorf("pgpubsub: %w", err)
	}
	p := &PubSub{
		byBytes:      cfg.HashByBytes,
		log:          cfg.Logger,
		minBackoff:   cfg.MinBackoff,
		maxBackoff:   cfg.MaxBackoff,
		healthEvery:  cfg.HealthCheckInterval,
		queryTimeout: cfg.QueryTimeout,
		channels:     make(map[string]*channelState),
	}
	if cfg.ChannelPrefix != nil {
		prefix := *cfg.ChannelPrefix
		p.prefix = &prefix
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.minBackoff <= 0 {
		p.minBackoff = 100 * time.Millisecond
	}
	if p.maxBackoff <= 0 {
		p.maxBackoff = 2 * time.Second
	}
	p.maxBackoff = max(p.maxBackoff, p.minBackoff)
	if p.healthEvery == 0 {
		p.healthEvery = 5 * time.Second
	}
	if p.queryTimeout <= 0 {
		p.queryTimeout = 5 * time.Second
	}
	cc := poolConfig.ConnConfig
	if cc.ConnectTimeout == 0 || cc.ConnectTimeout > p.queryTimeout {
		cc.ConnectTimeout = p.queryTimeout
	}
	p.target = fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
	poolConfig.MaxConns = cfg.MaxPublishConns
	if poolConfig.MaxConns <= 0 {
		poolConfig.MaxConns = 4
	}
	poolConfig.MinConns = 0
	p.connConfig = cc.Copy()
	appName := cfg.ApplicationName
	if appName == "" {
		appName = "gocable-PID-" + strconv.Itoa(os.Getpid())
	}
	p.connConfig.RuntimeParams["application_name"] = appName
	// NewWithConfig does not connect: the pool dials on first use.
	p.pool, err = pgxpool.NewWithConfig(context.Background(), poolConfig)
	if err != nil {
		return nil, fmt.Errorf("pgpubsub: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, ctx.Done()
	p.wg.Add(1)
	go p.run(ctx) // ended by Close, which waits on p.wg
	return p, nil
}

// Channel returns the PostgreSQL channel of stream as Rails' adapter names
// it: the channel_prefix, ":" and stream (ChannelPrefix), replaced by its
// SHA-1 hex digest when longer than 63 characters (63 bytes with
// HashByBytes), as postgresql.rb's channel_identifier does.
func (p *PubSub) Channel(stream string) string {
	name := stream
	if p.prefix != nil {
		name = *p.prefix + ":" + stream
	}
	n := utf8.RuneCountInString(name)
	if p.byBytes {
		n = len(name)
	}
	if n > 63 {
		sum := sha1.Sum([]byte(name))
		return hex.EncodeToString(sum[:])
	}
	return name
}

// wireName is the name PostgreSQL gives the channel of stream: Channel,
// truncated as the server truncates an identifier to 63 bytes (NAMEDATALEN
// - 1) on a character boundary (src/backend/parser/scansup.c,
// truncate_identifier). Only a name of 64 to 189 bytes and at most 63
// characters, which released Rails sends unhashed, is truncated.
func (p *PubSub) wireName(stream string) (string, error) {
	name := p.Channel(stream)
	if name == "" || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		return name, ErrInvalidStream
	}
	if len(name) > 63 {
		cut := 63
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	return name, nil
}

// State returns the state of the listener connection.
func (p *PubSub) State() State {
	return State(p.state.Load())
}

// Healthy reports whether the listener connection is up, that is whether
// broadcasts published now will be delivered to this process.
func (p *PubSub) Healthy() bool {
	return p.State() == StateUp
}

// Publish sends payload to the channel of stream with pg_notify, which is
// what Rails' NOTIFY "channel", 'payload' does. A payload longer than
// MaxPayload bytes is refused before anything is sent (ErrPayloadTooLarge);
// during an outage Publish fails at once (ErrUnavailable). It returns once
// PostgreSQL has taken the notification, or when ctx is done or
// Config.QueryTimeout has passed.
func (p *PubSub) Publish(ctx context.Context, stream string, payload []byte) error {
	name, err := p.wireName(stream)
	if err != nil {
		return &opError{Pkg: "pgpubsub", Op: "publish", Channel: name, Kind: err}
	}
	if len(payload) > MaxPayload {
		return &opError{Pkg: "pgpubsub", Op: "publish", Channel: name, Kind: ErrPayloadTooLarge,
			Err: fmt.Errorf("%d bytes, PostgreSQL's NOTIFY takes at most %d", len(payload), MaxPayload)}
	}
	if p.isClosed() {
		return &opError{Pkg: "pgpubsub", Op: "publish", Channel: name, Kind: ErrClosed}
	}
	if p.State() == StateDown {
		// Fail at once rather than wait out a dial to a server that is
		// known to be down, as redispubsub does.
		return &opError{Pkg: "pgpubsub", Op: "publish", Channel: name, Kind: ErrUnavailable}
	}
	ctx, cancel := context.WithTimeout(ctx, p.queryTimeout)
	defer cancel()
	if _, err := p.pool.Exec(ctx, "SELECT pg_notify($1, $2)", name, string(payload)); err != nil {
		e := &opError{Pkg: "pgpubsub", Op: "publish", Channel: name, Err: err}
		if p.State() != StateUp {
			e.Kind = ErrUnavailable
		}
		return e
	}
	return nil
}

// Subscribe registers deliver for stream. It returns once the listener
// connection has executed LISTEN for the stream's channel, at once if it
// already had, as Rails confirms a subscription only once LISTEN has run
// (postgresql.rb, Listener#listen runs the success callback after it).
// During an outage it waits for PostgreSQL to come back, until ctx is done;
// its error then wraps ctx.Err() and, if the database is down,
// ErrUnavailable.
//
// The returned unsubscribe function may be called any number of times;
// after it returns, deliver is not called again. When it removes the last
// subscriber of the channel, the listener sends UNLISTEN.
func (p *PubSub) Subscribe(ctx context.Context, stream string, deliver func(payload []byte)) (func(), error) {
	name, err := p.wireName(stream)
	if err != nil {
		return nil, &opError{Pkg: "pgpubsub", Op: "subscribe", Channel: name, Kind: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &opError{Pkg: "pgpubsub", Op: "subscribe", Channel: name, Err: err}
	}
	s := &subscriber{deliver: deliver}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, &opError{Pkg: "pgpubsub", Op: "subscribe", Channel: name, Kind: ErrClosed}
	}
	ch := p.channels[name]
	if ch == nil {
		ch = &channelState{subs: make(map[*subscriber]struct{}), ready: make(chan struct{})}
		p.channels[name] = ch
	}
	ch.subs[s] = struct{}{}
	ready := ch.ready
	if !ch.isReady {
		p.changed()
	}
	p.mu.Unlock()

	unsubscribe := p.unsubscriber(name, s)
	select {
	case <-ready:
		return unsubscribe, nil
	case <-ctx.Done():
		unsubscribe()
		e := &opError{Pkg: "pgpubsub", Op: "subscribe", Channel: name, Err: ctx.Err()}
		if p.State() != StateUp {
			e.Kind = ErrUnavailable
		}
		return nil, e
	case <-p.done:
		unsubscribe()
		return nil, &opError{Pkg: "pgpubsub", Op: "subscribe", Channel: name, Kind: ErrClosed}
	}
}

// changed tells the listener that channels changed. p.mu must be held.
func (p *PubSub) changed() {
	p.dirty = true
	if p.wake != nil {
		p.wake()
		p.wake = nil
	}
}

// unsubscriber returns the unsubscribe function of s.
func (p *PubSub) unsubscriber(name string, s *subscriber) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock() // waits for a deliver in progress
			s.done = true
			s.mu.Unlock()
			p.mu.Lock()
			defer p.mu.Unlock()
			ch := p.channels[name]
			if ch == nil {
				return // cannot happen: s keeps its channel in the map
			}
			delete(ch.subs, s)
			if len(ch.subs) == 0 {
				// The listener sends UNLISTEN: a Subscribe from now on
				// waits for the channel to be LISTENed again.
				if ch.isReady {
					ch.ready, ch.isReady = make(chan struct{}), false
				}
				p.changed()
			}
		})
	}
}

// Close stops the PubSub: it closes the listener connection, waits for the
// listener goroutine to end and closes the publishing pool. Subscribe calls
// in progress return ErrClosed; later Publish and Subscribe calls fail with
// it. It always returns nil; calling it again has no effect.
func (p *PubSub) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		p.wg.Wait()
		p.pool.Close()
		p.state.Store(int32(StateClosed))
	})
	return nil
}

func (p *PubSub) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
