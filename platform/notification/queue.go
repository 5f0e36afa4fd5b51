package notification

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// ErrUnknownTask is a task id that is not in the notifications queue.
var ErrUnknownTask = errors.New("notification: no such task in the notifications queue")

// DeadTask is a notification whose attempts are exhausted (archived by asynq).
type DeadTask struct {
	ID        string    `json:"id"`
	Template  string    `json:"template"`
	OrderID   string    `json:"orderId"`
	LastError string    `json:"lastError"`
	FailedAt  time.Time `json:"failedAt"`
}

// DeadTasks lists every archived task of the queue.
func DeadTasks(insp *asynq.Inspector) ([]DeadTask, error) {
	var out []DeadTask
	for page := 1; ; page++ {
		infos, err := insp.ListArchivedTasks(Queue, asynq.PageSize(500), asynq.Page(page))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("notification: list dead tasks: %w", err)
		}
		for _, ti := range infos {
			d := DeadTask{ID: ti.ID, Template: ti.Type, LastError: ti.LastErr, FailedAt: ti.LastFailedAt}
			if p, err := DecodePayload(ti.Payload); err == nil {
				d.OrderID = p.OrderID
			}
			out = append(out, d)
		}
		if len(infos) < 500 {
			return out, nil
		}
	}
}

// Requeue runs a dead (or scheduled/retrying) task again now. Its channels
// already delivered are not sent again.
func Requeue(insp *asynq.Inspector, id string) error {
	err := insp.RunTask(Queue, id)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return fmt.Errorf("%w: %q (list them with `stampede notifications dead`)", ErrUnknownTask, id)
	}
	return fmt.Errorf("notification: requeue %q: %w", id, err)
}

// TaskStates returns asynq's state of the order's task of each template that is in the queue.
func TaskStates(insp *asynq.Inspector, orderID string) (map[string]asynq.TaskInfo, error) {
	out := map[string]asynq.TaskInfo{}
	for _, t := range Templates {
		ti, err := insp.GetTaskInfo(Queue, TaskID(orderID, t))
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("notification: task %s: %w", TaskID(orderID, t), err)
		}
		out[t] = *ti
	}
	return out, nil
}

// WatchQueue refreshes the queue-tasks gauges every interval until ctx is done.
func WatchQueue(ctx context.Context, insp *asynq.Inspector, m *Metrics, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		qi, err := insp.GetQueueInfo(Queue)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			qi, err = &asynq.QueueInfo{}, nil
		}
		if err == nil {
			for state, n := range map[string]int{
				"pending": qi.Pending, "active": qi.Active, "scheduled": qi.Scheduled,
				"retry": qi.Retry, "archived": qi.Archived, "completed": qi.Completed,
			} {
				m.QueueTasks.WithLabelValues(state).Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
