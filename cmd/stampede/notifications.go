package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/notification"
)

func runNotifications(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede notifications dead | requeue ID", `Dead notifications are tasks of the "notifications" queue whose 6 attempts failed
(asynq archived them). "dead" lists them (id, template, order, last error, failed at);
"requeue ID" runs one again now: the channels it already delivered are not sent again.`)
	var redisURL string
	var asJSON bool
	redisURLFlag(fs, &redisURL, "Redis URL of the queue")
	fs.BoolVar(&asJSON, "json", "", false, "print JSON instead of a table")
	// Flags may come before or after the subcommand and its id.
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rest []string
	for fs.NArg() > 0 {
		rest = append(rest, fs.Arg(0))
		if err := fs.FlagSet.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if len(rest) == 0 {
		fs.Usage()
		return fmt.Errorf("notifications needs a subcommand: dead or requeue ID")
	}
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return fmt.Errorf("redis-url: %w", err)
	}
	insp := asynq.NewInspector(opt)
	defer insp.Close()

	switch rest[0] {
	case "dead":
		if len(rest) != 1 {
			return fmt.Errorf("notifications dead takes no argument, got %q", rest[1:])
		}
		dead, err := notification.DeadTasks(insp)
		if err != nil {
			return err
		}
		if asJSON {
			if dead == nil {
				dead = []notification.DeadTask{}
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(dead)
		}
		if len(dead) == 0 {
			fmt.Println("no dead notifications")
			return nil
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTEMPLATE\tORDER\tFAILED AT\tLAST ERROR")
		for _, d := range dead {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Template, d.OrderID, d.FailedAt.UTC().Format(time.RFC3339), d.LastError)
		}
		tw.Flush()
		fmt.Printf("%d dead; run one again with: stampede notifications requeue ID\n", len(dead))
		return nil
	case "requeue":
		if len(rest) != 2 {
			return fmt.Errorf("notifications requeue needs exactly one task id (e.g. ORDER:order-shipped), got %d arguments", len(rest)-1)
		}
		if err := notification.Requeue(insp, rest[1]); err != nil {
			return err
		}
		fmt.Printf("requeued %s\n", rest[1])
		return nil
	}
	return fmt.Errorf("unknown notifications subcommand %q (want dead or requeue ID)", rest[0])
}
