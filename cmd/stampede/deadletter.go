package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
)

func runDeadletter(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede deadletter list | replay [ID...]", `Outbox rows Kafka refused for what they are (too large, an invalid record) 3 times
are dead-lettered: marked in their service's outbox table with the reason, so that
the rows after them flow on (stampede_outbox_dead_total counts them).
"list" shows them (schema, row id, event id, topic, size, reason); "replay" gives
them back to the relay, all of them or the row IDs named (with one --schemas), for
when the cause is fixed (e.g. the broker's message.max.bytes raised). A row Kafka
still refuses is dead-lettered again after 3 more attempts.`)
	var (
		pgURL   string
		schemas string
		limit   int
		asJSON  bool
	)
	postgresURLFlag(fs, &pgURL)
	fs.StringVar(&schemas, "schemas", "STAMPEDE_RELAY_SCHEMAS", relaySchemas, "comma-separated schemas whose outbox to read")
	fs.IntVar(&limit, "limit", "", 100, "most rows listed per schema")
	fs.BoolVar(&asJSON, "json", "", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Flags may come before or after the subcommand and its ids.
	var rest []string
	for fs.NArg() > 0 {
		rest = append(rest, fs.Arg(0))
		if err := fs.FlagSet.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if len(rest) == 0 {
		fs.Usage()
		return fmt.Errorf("deadletter needs a subcommand: list or replay")
	}
	if limit < 1 {
		return fmt.Errorf("--limit %d: want at least 1", limit)
	}
	var ids []int64
	for _, a := range rest[1:] {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id < 1 {
			return fmt.Errorf("deadletter %s: %q is not a row id (a positive integer from `stampede deadletter list`)", rest[0], a)
		}
		ids = append(ids, id)
	}
	list := splitComma(schemas)
	switch {
	case rest[0] != "list" && rest[0] != "replay":
		return fmt.Errorf("unknown deadletter subcommand %q (want list or replay)", rest[0])
	case rest[0] == "list" && len(ids) > 0:
		return fmt.Errorf("deadletter list takes no argument, got %q", rest[1:])
	case len(ids) > 0 && len(list) != 1:
		return fmt.Errorf("deadletter replay ID...: row ids are per schema; name one with --schemas (dead rows are in %s)", schemas)
	}

	var all []outbox.DeadRow
	for _, schema := range list {
		db, err := postgres.Open(ctx, pgURL, schema, 2, 5*time.Second)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := outbox.EnsureTable(ctx, db); err != nil {
			return fmt.Errorf("outbox of %s: %w", schema, err)
		}
		if rest[0] == "replay" {
			n, err := outbox.ReplayDead(ctx, db, schema, ids)
			if err != nil {
				return err
			}
			fmt.Printf("%s: %d rows given back to the relay\n", schema, n)
			continue
		}
		rows, err := outbox.ListDead(ctx, db, schema, limit)
		if err != nil {
			return err
		}
		all = append(all, rows...)
	}
	if rest[0] == "replay" {
		return nil
	}
	if asJSON {
		if all == nil {
			all = []outbox.DeadRow{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	if len(all) == 0 {
		fmt.Println("no dead-lettered outbox rows")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEMA\tID\tEVENT\tTOPIC\tBYTES\tDEAD AT\tREASON")
	for _, d := range all {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", d.Schema, d.ID, d.EventID, d.Topic, d.Bytes, d.DeadAt.UTC().Format(time.RFC3339), d.Reason)
	}
	tw.Flush()
	fmt.Printf("%d dead; give them back to the relay with: stampede deadletter replay (all) or --schemas S replay ID...\n", len(all))
	return nil
}
