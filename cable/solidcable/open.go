package solidcable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/gocable/gocable/cable/railsconfig"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" driver: pure Go, so gocable stays a static binary
)

// Open opens the database that d, a configuration of the app's
// database.yml (railsconfig.LoadDatabase), describes, with the driver of
// its adapter: modernc.org/sqlite for sqlite3, whose relative paths are
// taken against appRoot as Rails takes them against Rails.root;
// github.com/jackc/pgx/v5 for postgresql (and postgis); and
// github.com/go-sql-driver/mysql for mysql2 and trilogy. It does not
// connect: the PubSub's listener does, and retries while the database is
// down. The caller closes the returned DB after the PubSub.
//
// The pool holds at most the configuration's pool (or max_connections)
// connections, 5 when missing, as Rails' pool.
func Open(d *railsconfig.Database, appRoot string) (*sql.DB, Dialect, error) {
	var (
		db      *sql.DB
		dialect Dialect
		err     error
	)
	switch d.Adapter {
	case "sqlite3":
		dialect = SQLite
		db, err = openSQLite(d, appRoot)
	case "postgresql", "postgis":
		dialect = PostgreSQL
		db, err = openPostgres(d)
	case "mysql2", "trilogy":
		dialect = MySQL
		db, err = openMySQL(d)
	case "":
		return nil, 0, fmt.Errorf("solidcable: database %q of %q has no adapter", d.Name, d.Env)
	default:
		return nil, 0, fmt.Errorf("solidcable: database %q of %q: adapter %q is not supported (sqlite3, postgresql, mysql2 and trilogy are)", d.Name, d.Env, d.Adapter)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("solidcable: database %q of %q: %w", d.Name, d.Env, err)
	}
	pool := 5
	for _, k := range []string{"max_connections", "pool"} {
		if n, err := strconv.Atoi(d.Params[k]); err == nil && n > 0 {
			pool = n
			break
		}
	}
	db.SetMaxOpenConns(pool)
	db.SetMaxIdleConns(min(pool, 2))
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, dialect, nil
}

// openSQLite opens the file with the pragmas Rails' sqlite3 adapter sets
// on each connection (activerecord/lib/active_record/connection_adapters/
// sqlite3_adapter.rb, configure_connection: busy timeout from the timeout
// key, journal_mode WAL), so that gocable and Rails share the file safely.
func openSQLite(d *railsconfig.Database, appRoot string) (*sql.DB, error) {
	path := d.Path(appRoot)
	if path == "" {
		return nil, fmt.Errorf("sqlite3 configuration has no database path")
	}
	timeout := 5000
	if n, err := strconv.Atoi(d.Params["timeout"]); err == nil && n >= 0 {
		timeout = n
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(timeout)+")")
	if path != ":memory:" {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	// A plain path is opened as it is written (a "file:" URI would read
	// "%" and "#" in it as URI syntax); the driver takes its parameters
	// from after the first "?", so a path may not have one.
	if !strings.HasPrefix(path, "file:") && strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlite3 database path %q has a \"?\", which the driver would read as parameters", path)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return sql.Open("sqlite", path+sep+q.Encode())
}

// openPostgres opens the database at d's PostgreSQL URL
// (railsconfig.Database.PostgresURL).
func openPostgres(d *railsconfig.Database) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(d.PostgresURL())
	if err != nil {
		return nil, fmt.Errorf("postgresql settings: %v", err)
	}
	return stdlib.OpenDB(*cfg), nil
}

// openMySQL builds a go-sql-driver configuration from the keys the mysql2
// gem takes (host, port, socket, username, password, database).
func openMySQL(d *railsconfig.Database) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = d.Username, d.Password, d.Database
	switch {
	case d.Socket != "":
		cfg.Net, cfg.Addr = "unix", d.Socket
	default:
		host, port := d.Host, d.Port
		if host == "" {
			host = "localhost"
		}
		if port == 0 {
			port = 3306
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, strconv.Itoa(port))
	}
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 30 * time.Second
	cfg.WriteTimeout = 30 * time.Second
	cfg.Loc = time.UTC
	// The driver logs a dropped connection on its own; the PubSub logs
	// the outage once, so the driver's lines go to Debug.
	cfg.Logger = mysqlLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql settings: %v", err)
	}
	return sql.OpenDB(conn), nil
}

// CreateTable creates the messages table and its indexes when they do not
// exist (see Schema), for a deployment whose Rails app has not run
// `bin/rails db:prepare` for the cable database, or has none.
func CreateTable(ctx context.Context, db *sql.DB, d Dialect, table string) error {
	if table == "" {
		table = DefaultTable
	}
	if !tableName.MatchString(table) {
		return fmt.Errorf("solidcable: table name %q: want letters, digits and _", table)
	}
	for _, stmt := range Schema(d, table) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			var me *mysql.MySQLError
			if d == MySQL && asMySQL(err, &me) && me.Number == 1061 {
				continue // the index exists (ER_DUP_KEYNAME)
			}
			return fmt.Errorf("solidcable: create table %s: %w", table, err)
		}
	}
	return nil
}

func asMySQL(err error, target **mysql.MySQLError) bool { return errors.As(err, target) }

// mysqlLogger sends go-sql-driver/mysql's log lines to slog.Default at Debug.
type mysqlLogger struct{}

func (mysqlLogger) Print(v ...any) { slog.Debug("mysql: " + strings.TrimSpace(fmt.Sprint(v...))) }
