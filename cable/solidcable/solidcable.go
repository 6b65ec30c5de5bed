package solidcable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocable/gocable/cable/internal/pubsubkit"

	"github.com/gocable/gocable/cable"
)

var (
	// ErrClosed is returned by PubSub methods after Close.
	ErrClosed = errors.New("solidcable: closed")

	// ErrUnavailable is wrapped into the errors of Publish and Subscribe
	// when they fail while the database is unreachable, so that callers
	// can tell an outage from a bad request with errors.Is.
	ErrUnavailable = errors.New("solidcable: database unavailable")

	// ErrTooLarge is wrapped into the error of Publish when a payload is
	// longer than Config.MaxPayload.
	ErrTooLarge = errors.New("solidcable: payload too large")
)

// opError is the error of a PubSub operation on a channel: its message
// reads `solidcable: <op> "<channel>": <kind>: <err>`, and it wraps both
// kind (a sentinel such as ErrUnavailable, or nil) and err.
type opError = pubsubkit.OpError

// Config configures a PubSub. DB is required; every other field's zero
// value means the default given with it, the gem's where it has one.
type Config struct {
	// DB is the database holding the messages table, owned by the caller,
	// who closes it after Close (Open makes one from database.yml). nil is
	// an error in New.
	DB *sql.DB
	// Dialect is DB's SQL dialect; the zero value is SQLite.
	Dialect Dialect
	// Table is the messages table; "" means DefaultTable,
	// solid_cable_messages.
	Table string

	// ChannelPrefix is prepended to every stream name, followed by ":", as
	// Rails' channel_prefix does for every adapter
	// (actioncable/lib/action_cable/subscription_adapter/channel_prefix.rb):
	// the channel column holds the prefixed name. nil means no prefix; a
	// pointer to "" is a real, empty prefix (":stream").
	ChannelPrefix *string

	// PollingInterval is the time between two polls, polling_interval in
	// cable.yml; zero means 100ms, the gem's default.
	PollingInterval time.Duration
	// MessageRetention is how old a message must be to be trimmed,
	// message_retention in cable.yml; zero means 24h, the gem's default.
	MessageRetention time.Duration
	// NoAutotrim turns trimming on Publish off, as autotrim: false does;
	// the zero value trims, as the gem does by default.
	NoAutotrim bool
	// TrimBatchSize is the most rows one trim deletes, trim_batch_size;
	// zero (or below 2) means 100, the gem's default.
	TrimBatchSize int
	// NoSkipLocked makes trimming lock with FOR UPDATE instead of FOR
	// UPDATE SKIP LOCKED, as use_skip_locked: false does; the zero value
	// skips locked rows, as the gem does by default.
	NoSkipLocked bool

	// MaxRowsPerPoll bounds the rows one poll reads; when a poll reads
	// that many, the next one runs at once rather than after the
	// interval, and a warning is logged once. Zero means 1000. (The gem
	// reads every matching row.)
	MaxRowsPerPoll int
	// MaxPayload bounds the payloads that Publish writes and that polls
	// read, in bytes: Publish fails with ErrTooLarge, and a longer row is
	// skipped with a log line naming its id. Zero means 1 MiB. (The gem's
	// column takes up to 512 MiB.)
	MaxPayload int
	// QueryTimeout bounds each query. Zero means 5s.
	QueryTimeout time.Duration

	// Logger receives the outage and recovery messages and errors in
	// deliver functions. nil means slog.Default().
	Logger *slog.Logger

	// MinBackoff and MaxBackoff bound the delay between attempts to reach
	// the database during an outage, which doubles from MinBackoff up to
	// MaxBackoff, jittered to between half and all of its value. Zero
	// means 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
}

// State is the state of a PubSub's listener, as returned by PubSub.State.
// Its zero value is StateConnecting.
type State = pubsubkit.State

const (
	// StateConnecting means the first query has not succeeded yet.
	StateConnecting = pubsubkit.Connecting
	// StateUp means the last poll succeeded.
	StateUp = pubsubkit.Up
	// StateDown means the last query failed; it is retried with backoff.
	StateDown = pubsubkit.Down
	// StateClosed means Close was called.
	StateClosed = pubsubkit.Closed
)

// PubSub is a cable.PubSub over Solid Cable's messages table, compatible
// with rails/solid_cable's adapter
// (lib/action_cable/subscription_adapter/solid_cable.rb); the package
// documentation describes its compatibility, delivery guarantee and
// outages.
//
// New starts one goroutine, the listener, owned by the PubSub and ended by
// Close, which waits for it: it polls the table and calls every deliver
// function, so calls to deliver never overlap, for any stream. A panic in
// deliver is recovered and logged. The unsubscribe function returned by
// Subscribe must not be called from within a deliver function.
//
// A PubSub is safe for concurrent use. The zero value is not usable; create
// one with New.
type PubSub struct {
	db      *sql.DB
	st      statements
	prefix  *string
	log     *slog.Logger
	every   time.Duration
	keep    time.Duration
	trim    bool
	batch   int
	skipLk  bool
	maxRows int
	maxLen  int
	timeout time.Duration
	minBack time.Duration
	maxBack time.Duration

	cancel    context.CancelFunc
	done      <-chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	state atomic.Int32  // a State
	polls atomic.Uint64 // poll queries run, failed ones included
	// lastID is the listener's last_id: the id past which the next poll
	// reads. It never passes the last id of a channel that no poll has
	// read for yet (see advance). Written under mu.
	lastID atomic.Int64

	mu       sync.Mutex
	closed   bool
	channels map[string]*channelState // by channel name (prefixed)
	rowsWarn bool                     // the MaxRowsPerPoll warning was logged
	started  bool                     // lastID has been set
}

// channelState is one channel that has subscribers, guarded by PubSub.mu.
type channelState struct {
	hash int64
	// lastID is the listener's per-channel id (channels[channel] =
	// last_message_id in add_channel): messages up to it are not
	// delivered.
	lastID int64
	subs   map[*subscriber]struct{}
}

// subscriber is one Subscribe call; its mutex makes deliver and
// unsubscribe exclusive.
type subscriber struct {
	mu      sync.Mutex
	deliver func([]byte)
	done    bool
}

var _ cable.PubSub = (*PubSub)(nil)

// New returns a PubSub on cfg.DB and starts its listener, which first
// reads the highest id of the table, as the gem's Listener does when it
// starts, and then polls. It fails only on a bad Config; a database that
// is down is retried in the background (see State).
func New(cfg Config) (*PubSub, error) {
	if cfg.DB == nil {
		return nil, errors.New("solidcable: Config.DB is nil")
	}
	table := cfg.Table
	if table == "" {
		table = DefaultTable
	}
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("solidcable: table name %q: want letters, digits and _", table)
	}
	switch cfg.Dialect {
	case SQLite, PostgreSQL, MySQL:
	default:
		return nil, fmt.Errorf("solidcable: unknown %v", cfg.Dialect)
	}
	p := &PubSub{
		db:       cfg.DB,
		st:       newStatements(cfg.Dialect, table),
		log:      cfg.Logger,
		every:    cfg.PollingInterval,
		keep:     cfg.MessageRetention,
		trim:     !cfg.NoAutotrim,
		batch:    cfg.TrimBatchSize,
		skipLk:   !cfg.NoSkipLocked,
		maxRows:  cfg.MaxRowsPerPoll,
		maxLen:   cfg.MaxPayload,
		timeout:  cfg.QueryTimeout,
		minBack:  cfg.MinBackoff,
		maxBack:  cfg.MaxBackoff,
		channels: make(map[string]*channelState),
	}
	if cfg.ChannelPrefix != nil {
		s := *cfg.ChannelPrefix
		p.prefix = &s
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	setDefault(&p.every, 100*time.Millisecond)
	setDefault(&p.keep, 24*time.Hour)
	setDefault(&p.timeout, 5*time.Second)
	setDefault(&p.minBack, 100*time.Millisecond)
	setDefault(&p.maxBack, 5*time.Second)
	p.maxBack = max(p.maxBack, p.minBack)
	if p.batch < 2 {
		p.batch = 100
	}
	if p.maxRows <= 0 {
		p.maxRows = 1000
	}
	if p.maxLen <= 0 {
		p.maxLen = 1 << 20
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, ctx.Done()
	p.wg.Add(1)
	go p.listen(ctx) // ended by Close, which waits on p.wg
	return p, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Channel returns the channel name of stream: stream itself without a
// prefix, else the prefix, ":" and stream, as Rails names it.
func (p *PubSub) Channel(stream string) string {
	if p.prefix == nil {
		return stream
	}
	return *p.prefix + ":" + stream
}

// State returns the state of the listener.
func (p *PubSub) State() State { return State(p.state.Load()) }

// Healthy reports whether the last poll succeeded, that is whether messages
// are being read.
func (p *PubSub) Healthy() bool { return p.State() == StateUp }

// Polls returns how many poll queries the listener has run, failed ones
// included: one per polling interval however many streams there are.
func (p *PubSub) Polls() uint64 { return p.polls.Load() }

// Publish writes payload as a message of stream's channel, as
// SolidCable::Message.broadcast does: one row with created_at (see
// CreatedAt), the channel, the payload and the channel's hash. Then, with
// autotrim, it trims as the gem's broadcast runs SolidCable::TrimJob: with
// probability 2/TrimBatchSize (the job's trim? with trim_chance 2), it
// deletes up to TrimBatchSize messages older than MessageRetention (see
// Trim); a failed trim is logged, not returned. A payload longer than
// MaxPayload fails with ErrTooLarge; while the listener finds the database
// down, Publish fails at once with an error wrapping ErrUnavailable.
func (p *PubSub) Publish(ctx context.Context, stream string, payload []byte) error {
	channel := p.Channel(stream)
	if p.isClosed() {
		return &opError{Pkg: "solidcable", Op: "publish", Channel: channel, Kind: ErrClosed}
	}
	if len(payload) > p.maxLen {
		return &opError{Pkg: "solidcable", Op: "publish", Channel: channel, Kind: ErrTooLarge,
			Err: fmt.Errorf("%d bytes, more than MaxPayload %d", len(payload), p.maxLen)}
	}
	if len(channel) > 1024 {
		return &opError{Pkg: "solidcable", Op: "publish", Channel: channel[:64] + "...", Err: fmt.Errorf("channel name of %d bytes, more than the 1024 of the channel column", len(channel))}
	}
	if p.State() == StateDown {
		// Fail at once, as redispubsub does: waiting out QueryTimeout
		// would hold the calling connection's commands and write late.
		// The listener's retries tell when the database is back.
		return &opError{Pkg: "solidcable", Op: "publish", Channel: channel, Kind: ErrUnavailable}
	}
	qctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	_, err := p.db.ExecContext(qctx, p.st.insert, CreatedAt(time.Now()), []byte(channel), payload, ChannelHash(channel))
	if err != nil {
		e := &opError{Pkg: "solidcable", Op: "publish", Channel: channel, Err: err}
		if p.State() != StateUp {
			e.Kind = ErrUnavailable
		}
		return e
	}
	if p.trim && p.trimNow() {
		if _, err := p.Trim(ctx); err != nil {
			p.log.Warn("solidcable: trim failed", "err", err)
		}
	}
	return nil
}

// trimNow is SolidCable::TrimJob#trim?: rand < the fractional part of
// trim_chance / trim_batch_size. Where that is a whole number (a batch
// size of 2), the gem never trims; gocable trims on every write instead.
func (p *PubSub) trimNow() bool {
	per := 2 / float64(p.batch)
	frac := per - float64(int(per))
	if frac == 0 {
		return true
	}
	return rand.Float64() < frac
}

// Trim deletes up to TrimBatchSize messages created more than
// MessageRetention ago, in one transaction, as SolidCable::TrimJob#perform
// does (app/jobs/solid_cable/trim_job.rb), and returns how many it deleted.
// Publish calls it (see there); with NoAutotrim, a program may call it on a
// schedule, as the gem's README suggests running the job out of band.
func (p *PubSub) Trim(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("solidcable: trim: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	cutoff := CreatedAt(time.Now().Add(-p.keep))
	rows, err := tx.QueryContext(ctx, p.st.trimSelect(p.batch, p.skipLk), cutoff)
	if err != nil {
		return 0, fmt.Errorf("solidcable: trim: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return 0, fmt.Errorf("solidcable: trim: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("solidcable: trim: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("solidcable: trim: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, p.st.trimDelete(ids)); err != nil {
		return 0, fmt.Errorf("solidcable: trim: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("solidcable: trim: %w", err)
	}
	return len(ids), nil
}

// Subscribe registers deliver for stream. For the first subscriber of a
// stream it reads the table's highest id, as the gem's add_channel does
// (channels[channel] = last_message_id), so that the stream receives the
// messages written after it returns and none before; later subscribers of
// the stream join at once. While the database is down it retries with
// backoff until ctx is done; the error then wraps ctx.Err() and
// ErrUnavailable.
//
// The returned unsubscribe function may be called any number of times;
// after it returns, deliver is not called again.
func (p *PubSub) Subscribe(ctx context.Context, stream string, deliver func(payload []byte)) (func(), error) {
	channel := p.Channel(stream)
	s := &subscriber{deliver: deliver}
	fail := func(kind, err error) (func(), error) {
		return nil, &opError{Pkg: "solidcable", Op: "subscribe", Channel: channel, Kind: kind, Err: err}
	}
	if len(channel) > 1024 {
		return fail(nil, fmt.Errorf("channel name of %d bytes, more than the 1024 of the channel column", len(channel)))
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fail(ErrClosed, nil)
	}
	if ch := p.channels[channel]; ch != nil {
		ch.subs[s] = struct{}{}
		p.mu.Unlock()
		return p.unsubscriber(channel, s), nil
	}
	p.mu.Unlock()

	var last int64
	for attempt := 0; ; attempt++ {
		var err error
		last, err = p.maxID(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fail(ErrUnavailable, ctx.Err())
		}
		select {
		case <-time.After(p.backoff(attempt)):
		case <-ctx.Done():
			return fail(ErrUnavailable, fmt.Errorf("%w (last error: %v)", ctx.Err(), err))
		case <-p.done:
			return fail(ErrClosed, nil)
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fail(ErrClosed, nil)
	}
	ch := p.channels[channel]
	if ch == nil {
		ch = &channelState{hash: ChannelHash(channel), lastID: last, subs: make(map[*subscriber]struct{})}
		p.channels[channel] = ch
		// The next poll must read this channel from its own last id,
		// even when the listener started later or has read past it for
		// other channels (the gem's listener would skip those rows).
		if !p.started || p.lastID.Load() > last {
			p.lastID.Store(last)
			p.started = true
		}
	}
	ch.subs[s] = struct{}{}
	return p.unsubscriber(channel, s), nil
}

// unsubscriber returns the unsubscribe function of s.
func (p *PubSub) unsubscriber(channel string, s *subscriber) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock() // waits for a deliver in progress
			s.done = true
			s.mu.Unlock()
			p.mu.Lock()
			defer p.mu.Unlock()
			if ch := p.channels[channel]; ch != nil {
				delete(ch.subs, s)
				if len(ch.subs) == 0 {
					delete(p.channels, channel) // remove_channel
				}
			}
		})
	}
}

// maxID is last_message_id: SolidCable::Message.maximum(:id) || 0.
func (p *PubSub) maxID(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var id sql.NullInt64
	if err := p.db.QueryRowContext(ctx, p.st.maxID).Scan(&id); err != nil {
		return 0, err
	}
	return id.Int64, nil
}

// backoff returns the jittered delay before attempt n+1.
func (p *PubSub) backoff(n int) time.Duration {
	d := p.minBack
	for i := 0; i < n && d < p.maxBack; i++ {
		d *= 2
	}
	d = min(d, p.maxBack)
	return d/2 + rand.N(d/2+1)
}

// Close stops the listener and waits for it. Later Publish and Subscribe
// calls fail with ErrClosed. Close does not close the DB. It always
// returns nil; calling it again has no effect.
func (p *PubSub) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		p.wg.Wait()
		p.state.Store(int32(StateClosed))
	})
	return nil
}

func (p *PubSub) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
