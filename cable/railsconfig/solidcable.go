package railsconfig

// This file reads the settings of the solid_cable adapter from cable.yml as
// rails/solid_cable's lib/solid_cable.rb reads them.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SolidCable is what gocable uses of the solid_cable adapter's settings in
// one environment of cable.yml (rails/solid_cable lib/solid_cable.rb). The
// zero value has every setting missing; the defaults are the gem's, and
// are applied by the methods below.
type SolidCable struct {
	// Database is the configuration name of connects_to: {database:
	// {writing: NAME}}, the database.yml configuration the messages table
	// lives in; "" when connects_to is missing, and the gem then uses the
	// app's primary database (see DatabaseName).
	Database string
	// PollingInterval is polling_interval, such as 0.1.seconds; nil when
	// missing.
	PollingInterval *time.Duration
	// MessageRetention is message_retention, such as 1.day; nil when
	// missing.
	MessageRetention *time.Duration
	// Autotrim, SilencePolling and UseSkipLocked are autotrim,
	// silence_polling and use_skip_locked; nil when missing.
	// SilencePolling changes nothing in gocable, which never logs its
	// polling queries (the gem silences ActiveRecord's log of them).
	Autotrim, SilencePolling, UseSkipLocked *bool
	// TrimBatchSize is trim_batch_size; nil when missing.
	TrimBatchSize *int
}

// DatabaseName is the database.yml configuration to use: Database, or
// "primary" without connects_to.
func (s SolidCable) DatabaseName() string {
	if s.Database == "" {
		return "primary"
	}
	return s.Database
}

// Interval is PollingInterval, 100ms when missing (SolidCable.polling_interval).
func (s SolidCable) Interval() time.Duration {
	if s.PollingInterval == nil {
		return 100 * time.Millisecond
	}
	return *s.PollingInterval
}

// Retention is MessageRetention, 24h when missing (SolidCable.message_retention).
func (s SolidCable) Retention() time.Duration {
	if s.MessageRetention == nil {
		return 24 * time.Hour
	}
	return *s.MessageRetention
}

// AutotrimOn is Autotrim unless it is false (SolidCable.autotrim?).
func (s SolidCable) AutotrimOn() bool { return s.Autotrim == nil || *s.Autotrim }

// BatchSize is TrimBatchSize, or 100 when missing or below 2
// (SolidCable.trim_batch_size).
func (s SolidCable) BatchSize() int {
	if s.TrimBatchSize == nil || *s.TrimBatchSize < 2 {
		return 100
	}
	return *s.TrimBatchSize
}

// readConnectsTo reads connects_to: {database: {writing: NAME}}, the form
// the gem's install template writes. reading: may be given too; gocable
// writes and reads through writing, as the gem's listener reads through
// the writing role by default.
func (s *SolidCable) readConnectsTo(v *yamlNode) error {
	if v.kind != mapNode {
		return fmt.Errorf("line %d: connects_to is not a mapping", v.line)
	}
	for i, k := range v.keys {
		db := v.vals[i]
		if k != "database" {
			return fmt.Errorf("line %d: connects_to.%s is not supported by gocable (only database: {writing: NAME} is)", db.line, k)
		}
		if db.kind != mapNode {
			return fmt.Errorf("line %d: connects_to.database is not a mapping", db.line)
		}
		for j, role := range db.keys {
			name, err := db.vals[j].str("connects_to.database." + role)
			if err != nil {
				return err
			}
			switch role {
			case "writing":
				s.Database = name
			case "reading":
			default:
				return fmt.Errorf("line %d: connects_to.database.%s: gocable knows the writing and reading roles only", db.vals[j].line, role)
			}
		}
		if s.Database == "" {
			return fmt.Errorf("line %d: connects_to.database has no writing database", db.line)
		}
	}
	return nil
}

// durationUnits are the ActiveSupport::Duration units that a Numeric
// responds to (activesupport/lib/active_support/core_ext/numeric/time.rb,
// duration.rb: a month is 1/12 of a Gregorian year of 365.2425 days).
var durationUnits = map[string]float64{
	"second": 1, "seconds": 1,
	"minute": 60, "minutes": 60,
	"hour": 3600, "hours": 3600,
	"day": 86400, "days": 86400,
	"week": 604800, "weeks": 604800,
	"fortnight": 1209600, "fortnights": 1209600,
	"month": 2629746, "months": 2629746,
	"year": 31556952, "years": 31556952,
}

// duration reads a duration as SolidCable.parse_duration does: the text
// split at its last ".", the amount before it (to_f) and the unit after
// it, so "0.1.seconds" and "1.day". Where Ruby would raise (no unit) or
// read a malformed amount as 0, it is an error.
func (n *yamlNode) duration(key string) (*time.Duration, error) {
	if n.kind != scalarNode {
		return nil, fmt.Errorf("line %d: %s is not a duration such as 0.1.seconds", n.line, key)
	}
	text := n.value
	i := strings.LastIndexByte(text, '.')
	if i < 0 {
		return nil, fmt.Errorf("line %d: %s %q has no unit: write it as Ruby code, such as %s.seconds", n.line, key, text, text)
	}
	amount, unit := text[:i], text[i+1:]
	secs, ok := durationUnits[unit]
	if !ok {
		return nil, fmt.Errorf("line %d: %s %q: unknown unit %q (seconds, minutes, hours, days, weeks, months, years)", n.line, key, text, unit)
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(amount, "_", ""), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("line %d: %s %q: %q is not a positive number", n.line, key, text, amount)
	}
	d := f * secs * float64(time.Second)
	if d > float64(math.MaxInt64) {
		return nil, fmt.Errorf("line %d: %s %q is too long", n.line, key, text)
	}
	out := time.Duration(d)
	return &out, nil
}

// boolPtr reads true or false.
func (n *yamlNode) boolPtr(key string) (*bool, error) {
	b, err := n.boolean(key)
	if err != nil {
		return nil, err
	}
	return &b, nil
}
