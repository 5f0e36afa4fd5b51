package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/deadletter"
	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/kafka"
	"github.com/stampede-dev/stampede/platform/outbox"
	"github.com/stampede-dev/stampede/platform/postgres"
)

func runDeadletter(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede deadletter list | replay [ID... | TOPIC/PARTITION@OFFSET...]", `Two kinds of dead letters, both kept with the reason, so that one bad record never
stops the rest:
- outbox rows Kafka refused for what they are (too large, an invalid record) 3 times,
  marked in their service's outbox table (stampede_outbox_dead_total counts them);
- records consumers could not process (undecodable, refused by Temporal, given up by
  an analytics target), on the dead-letter topics orders.dlq and analytics.dlq
  (stampede_kafka_dlq_records_total, stampede_analytics_dead_letters_total).
"list" shows both: outbox rows (schema, row id, event id, topic, size, reason) and
dead-letter records (REF = topic/partition@offset, source topic/partition@offset,
size, reason). "replay" with no argument gives every dead outbox row back to the
relay, with row IDs (and one --schemas) those rows; with refs from list
(orders.dlq/0@12 ...) it produces those records, at most 100, back to their source
topic and partition as they were (a record cut to size when dead-lettered cannot be).
Replay once the cause is fixed; a record still refused is dead-lettered again.`)
	var (
		pgURL   string
		schemas string
		topics  string
		brokers string
		limit   int
		asJSON  bool
	)
	postgresURLFlag(fs, &pgURL)
	kafkaBrokersFlag(fs, &brokers, "Kafka seed brokers (dead-letter topics)")
	fs.StringVar(&schemas, "schemas", "STAMPEDE_RELAY_SCHEMAS", relaySchemas, "comma-separated schemas whose outbox to read (empty: none)")
	fs.StringVar(&topics, "topics", "STAMPEDE_DLQ_TOPICS", event.TopicOrdersDLQ+","+event.TopicAnalyticsDLQ, "comma-separated dead-letter topics (empty: none)")
	fs.IntVar(&limit, "limit", "", 100, "most rows listed per schema, most records per dead-letter partition")
	fs.BoolVar(&asJSON, "json", "", false, "print JSON instead of tables")
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
		return usageError{fmt.Errorf("deadletter needs a subcommand: list or replay")}
	}
	if limit < 1 {
		return usageError{fmt.Errorf("--limit %d: want at least 1", limit)}
	}
	var (
		ids  []int64
		refs []deadletter.Ref
	)
	for _, a := range rest[1:] {
		if id, err := strconv.ParseInt(a, 10, 64); err == nil && id > 0 {
			ids = append(ids, id)
			continue
		}
		ref, err := deadletter.ParseRef(a)
		if err != nil {
			return usageError{fmt.Errorf("deadletter %s: %q is neither an outbox row id (a positive integer) nor a dead letter (TOPIC/PARTITION@OFFSET) from `stampede deadletter list`", rest[0], a)}
		}
		refs = append(refs, ref)
	}
	schemaList, topicList := splitComma(schemas), splitComma(topics)
	switch {
	case rest[0] != "list" && rest[0] != "replay":
		return usageError{fmt.Errorf("unknown deadletter subcommand %q (want list or replay)", rest[0])}
	case rest[0] == "list" && len(rest) > 1:
		return usageError{fmt.Errorf("deadletter list takes no argument, got %q", rest[1:])}
	case len(ids) > 0 && len(refs) > 0:
		return usageError{fmt.Errorf("deadletter replay: name outbox rows or dead-letter records, not both")}
	case len(ids) > 0 && len(schemaList) != 1:
		return usageError{fmt.Errorf("deadletter replay ID...: row ids are per schema; name one with --schemas (dead rows are in %s)", schemas)}
	case len(refs) > deadletter.MaxReplay:
		return usageError{fmt.Errorf("deadletter replay: %d records named, at most %d at once", len(refs), deadletter.MaxReplay)}
	}
	kopts := kafka.BaseOpts("stampede-deadletter", splitComma(brokers))

	if rest[0] == "replay" && len(refs) > 0 {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		done, err := deadletter.Replay(rctx, kopts, topicList, refs)
		for _, r := range done {
			fmt.Printf("%s -> %s/%d@%d\n", r.Ref, r.Topic, r.Partition, r.Offset)
		}
		if err != nil {
			return err
		}
		fmt.Printf("%d records produced back to their source topics\n", len(done))
		return nil
	}

	var all []outbox.DeadRow
	for _, schema := range schemaList {
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
	var letters []deadletter.Letter
	var kerr error
	if len(topicList) > 0 {
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		letters, kerr = deadletter.List(lctx, kopts, topicList, limit)
		cancel()
	}
	if asJSON {
		if all == nil {
			all = []outbox.DeadRow{}
		}
		if letters == nil {
			letters = []deadletter.Letter{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"outbox": all, "topics": letters}); err != nil {
			return err
		}
		return kerr
	}
	if len(schemaList) > 0 {
		printDeadRows(all)
	}
	if len(topicList) > 0 {
		printLetters(letters, topicList)
	}
	return kerr
}

func printDeadRows(all []outbox.DeadRow) {
	if len(all) == 0 {
		fmt.Println("no dead-lettered outbox rows")
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEMA\tID\tEVENT\tTOPIC\tBYTES\tDEAD AT\tREASON")
	for _, d := range all {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", d.Schema, d.ID, d.EventID, d.Topic, d.Bytes, d.DeadAt.UTC().Format(time.RFC3339), d.Reason)
	}
	tw.Flush()
	fmt.Printf("%d dead outbox rows; give them back to the relay with: stampede deadletter replay (all) or --schemas S replay ID...\n", len(all))
}

func printLetters(letters []deadletter.Letter, topics []string) {
	if len(letters) == 0 {
		fmt.Printf("no records on %s\n", strings.Join(topics, ", "))
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REF\tSOURCE\tBYTES\tAT\tREASON")
	for _, l := range letters {
		size := strconv.Itoa(l.Bytes)
		if l.TruncatedFrom > 0 {
			size = fmt.Sprintf("%d (cut from %d: not replayable)", l.Bytes, l.TruncatedFrom)
		}
		reason := l.Reason
		if l.ReplayedFrom != "" {
			reason += " (replay of " + l.ReplayedFrom + ")"
		}
		fmt.Fprintf(tw, "%s\t%s/%d@%d\t%s\t%s\t%s\n", l.ID, l.SourceTopic, l.SourcePartition, l.SourceOffset, size, l.At.Format(time.RFC3339), reason)
	}
	tw.Flush()
	fmt.Printf("%d dead-letter records; produce some back to their source with: stampede deadletter replay REF... (at most %d)\n", len(letters), deadletter.MaxReplay)
}
