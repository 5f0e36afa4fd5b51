package orchestrator

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SetGroupSessionTimeout sets the KIP-848 session timeout and heartbeat
// interval of one consumer group (group configs consumer.session.timeout.ms
// and consumer.heartbeat.interval.ms, Kafka 4.0+). They decide how long the
// partitions of a SIGKILLed member stay unowned, and they override the
// broker-wide group.consumer.session.timeout.ms for this group only; the
// broker still bounds them by group.consumer.min.session.timeout.ms and
// group.consumer.min.heartbeat.interval.ms. A zero session deletes both
// settings, so the broker's defaults apply again (tests clean up with it).
func SetGroupSessionTimeout(ctx context.Context, cl *kgo.Client, group string, session, heartbeat time.Duration) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	for name, d := range map[string]time.Duration{
		"consumer.session.timeout.ms":    session,
		"consumer.heartbeat.interval.ms": heartbeat,
	} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name = name
		c.Op = kmsg.IncrementalAlterConfigOpSet
		c.Value = kmsg.StringPtr(strconv.FormatInt(d.Milliseconds(), 10))
		if session == 0 {
			c.Op, c.Value = kmsg.IncrementalAlterConfigOpDelete, nil
		}
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("orchestrator: set session timeout of group %s: %w", group, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = ": " + *r.ErrorMessage
			}
			return fmt.Errorf("orchestrator: set session timeout of group %s: %w%s", group, err, msg)
		}
	}
	return nil
}
