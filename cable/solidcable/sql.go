package solidcable

// This file holds what Solid Cable's table looks like in each database, and
// the statements gocable runs on it.

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Dialect is the SQL database holding the messages table. Its zero value
// is SQLite.
type Dialect int

const (
	// SQLite is SQLite 3, through modernc.org/sqlite (driver "sqlite").
	SQLite Dialect = iota
	// PostgreSQL is PostgreSQL, through github.com/jackc/pgx/v5/stdlib.
	PostgreSQL
	// MySQL is MySQL or MariaDB, through github.com/go-sql-driver/mysql.
	MySQL
)

// String returns "sqlite3", "postgresql" or "mysql2", the names of the Rails
// adapters.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite3"
	case PostgreSQL:
		return "postgresql"
	case MySQL:
		return "mysql2"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// DefaultTable is the gem's table (app/models/solid_cable/message.rb).
const DefaultTable = "solid_cable_messages"

// tableName is what Config.Table may be: a plain SQL identifier.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ChannelHash returns the channel_hash column of channel, as
// SolidCable::Message.channel_hash_for computes it
// (app/models/solid_cable/message.rb): the first 8 bytes of the SHA-256 of
// the channel, read as a signed big-endian 64-bit integer (unpack1("q>")).
func ChannelHash(channel string) int64 {
	sum := sha256.Sum256([]byte(channel))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// CreatedAt returns the created_at value the gem writes for a message
// broadcast at t: Time.current in UTC, with its microseconds (a datetime
// column has precision 6 since Rails 7), as ActiveRecord quotes a time
// (activerecord/lib/active_record/connection_adapters/abstract/quoting.rb,
// quoted_date: to_fs(:db), then "." and six digits when usec > 0). Rails
// sends it as that string literal to every database; in SQLite it is the
// stored text itself.
func CreatedAt(t time.Time) string {
	t = t.UTC().Truncate(time.Microsecond)
	s := t.Format("2006-01-02 15:04:05")
	if us := t.Nanosecond() / 1000; us > 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s
}

// Schema returns the statements that create table in dialect as
// `bin/rails db:schema:load` does from the gem's db/cable_schema.rb
// (lib/generators/solid_cable/install/templates/db/cable_schema.rb):
// id, channel binary(1024), payload binary(536870912), created_at
// datetime(6), channel_hash bigint, each NOT NULL, with indexes on channel,
// channel_hash and created_at. The column types are the ones each Rails
// adapter maps those to (blob, bytea, varbinary(1024) and longblob).
func Schema(d Dialect, table string) []string {
	q := quoteIdent(d, table)
	var create string
	switch d {
	case PostgreSQL:
		create = `CREATE TABLE IF NOT EXISTS ` + q + ` ("id" bigserial PRIMARY KEY, "channel" bytea NOT NULL, "payload" bytea NOT NULL, "created_at" timestamp(6) NOT NULL, "channel_hash" bigint NOT NULL)`
	case MySQL:
		create = "CREATE TABLE IF NOT EXISTS " + q + " (`id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, `channel` varbinary(1024) NOT NULL, `payload` longblob NOT NULL, `created_at` datetime(6) NOT NULL, `channel_hash` bigint NOT NULL)"
	default:
		create = `CREATE TABLE IF NOT EXISTS ` + q + ` ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "channel" blob(1024) NOT NULL, "payload" blob(536870912) NOT NULL, "created_at" datetime(6) NOT NULL, "channel_hash" integer(8) NOT NULL)`
	}
	out := []string{create}
	for _, col := range []string{"channel", "channel_hash", "created_at"} {
		idx := quoteIdent(d, "index_"+table+"_on_"+col)
		if d == MySQL {
			// MySQL has no CREATE INDEX IF NOT EXISTS (MariaDB has).
			out = append(out, "CREATE INDEX "+idx+" ON "+q+" ("+quoteIdent(d, col)+")")
			continue
		}
		out = append(out, "CREATE INDEX IF NOT EXISTS "+idx+" ON "+q+" ("+quoteIdent(d, col)+")")
	}
	return out
}

// quoteIdent quotes a plain identifier (checked by tableName).
func quoteIdent(d Dialect, name string) string {
	if d == MySQL {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// statements are the SQL texts of one PubSub.
type statements struct {
	dialect Dialect
	table   string // quoted
	insert  string
	maxID   string
}

func newStatements(d Dialect, table string) statements {
	q := quoteIdent(d, table)
	s := statements{dialect: d, table: q}
	// SolidCable::Message.broadcast: insert({created_at:, channel:,
	// payload:, channel_hash:}).
	s.insert = "INSERT INTO " + q + " (created_at, channel, payload, channel_hash) VALUES (" + s.params(4) + ")"
	s.maxID = "SELECT MAX(id) FROM " + q
	return s
}

// params returns n placeholders.
func (s statements) params(n int) string {
	ps := make([]string, n)
	for i := range ps {
		if s.dialect == PostgreSQL {
			ps[i] = "$" + strconv.Itoa(i+1)
		} else {
			ps[i] = "?"
		}
	}
	return strings.Join(ps, ", ")
}

// poll returns the query of the listener's broadcast_messages
// (SolidCable::Message.broadcastable: where(channel_hash: hashes).where(id:
// (last_id + 1)..).order(:id)), bounded to limit rows, and returning the
// payload only when it is at most maxPayload bytes long, its length always.
// The hashes are integers written into the text, so that any number of
// streams fits every database's limit on bound parameters; its one
// parameter is last_id.
func (s statements) poll(hashes []int64, limit, maxPayload int) string {
	var b strings.Builder
	b.WriteString("SELECT id, channel, CASE WHEN LENGTH(payload) <= ")
	b.WriteString(strconv.Itoa(maxPayload))
	b.WriteString(" THEN payload END, LENGTH(payload) FROM ")
	b.WriteString(s.table)
	b.WriteString(" WHERE channel_hash IN (")
	for i, h := range hashes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(h, 10))
	}
	b.WriteString(") AND id > ")
	b.WriteString(s.params(1))
	b.WriteString(" ORDER BY id LIMIT ")
	b.WriteString(strconv.Itoa(limit))
	return b.String()
}

// trimSelect is SolidCable::TrimJob's selection: trimmable (created_at <
// message_retention.ago), non_blocking_lock (FOR UPDATE SKIP LOCKED, or FOR
// UPDATE; SQLite has neither and needs none: its writes are serialized),
// limit(trim_batch_size), pluck(:id) (app/jobs/solid_cable/trim_job.rb,
// app/models/solid_cable/record.rb).
func (s statements) trimSelect(batch int, skipLocked bool) string {
	q := "SELECT id FROM " + s.table + " WHERE created_at < " + s.params(1) + " LIMIT " + strconv.Itoa(batch)
	if s.dialect != SQLite {
		q += " FOR UPDATE"
		if skipLocked {
			q += " SKIP LOCKED"
		}
	}
	return q
}

// trimDelete is where(id: ids).delete_all.
func (s statements) trimDelete(ids []int64) string {
	var b strings.Builder
	b.WriteString("DELETE FROM ")
	b.WriteString(s.table)
	b.WriteString(" WHERE id IN (")
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteString(")")
	return b.String()
}
