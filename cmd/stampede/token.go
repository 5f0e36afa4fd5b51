package main

import (
	"context"
	"fmt"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/web"
)

func runToken(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede token user ID", `Issue a user token: the bearer a shop's customer presents to the Orders API to read
(GET /v1/orders/{id}, GET /v1/orders) and cancel (POST /v1/orders/{id}/cancel) the
orders of user ID, and no one else's. Placing an order needs no token. The token is
signed with the stack's user-token key (.stampede/secrets/user-token-key, written by
stampede up): whoever can read that file can issue tokens, as a login service would.
It ends after --ttl or when the key rotates (a full stampede down and up), whichever
comes first.

  curl -H "Authorization: Bearer $(bin/stampede token user u-1)" http://127.0.0.1:8080/v1/orders

Internal callers use the service token instead (.stampede/secrets/service-token),
which this command never prints.`)
	var ttl time.Duration
	fs.DurationVar(&ttl, "ttl", "STAMPEDE_USER_TOKEN_TTL", 24*time.Hour, fmt.Sprintf("how long the token is valid (at most %s)", web.MaxUserTokenTTL))
	if err := fs.Parse(args); err != nil {
		return err
	}
	pos := fs.Args()
	if len(pos) > 2 { // flags after "user ID"
		if err := fs.Parse(pos[2:]); err != nil {
			return err
		}
		pos = append(pos[:2:2], fs.Args()...)
	}
	if len(pos) != 2 || pos[0] != "user" {
		return fmt.Errorf("usage: stampede token user ID [--ttl 24h]")
	}
	key, err := config.UserTokenKey()
	if err != nil {
		return err
	}
	tok, err := web.NewUserTokens(key).Issue(pos[1], time.Now(), ttl)
	if err != nil {
		return fmt.Errorf("token for user %q: %w", pos[1], err)
	}
	fmt.Println(tok)
	return nil
}
