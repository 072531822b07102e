package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topicUsage = `Usage: strata topic <command> [--bootstrap host:port] [flags] [NAME ...]

Commands:
  create NAME ...        create topics
        --partitions N            partitions (default -1: the broker's num.partitions)
        --replication-factor N    replicas (default -1: the broker's default.replication.factor)
        --config key=value        topic config, repeatable (e.g. --config retention.ms=3600000)
  list                   list topics (--internal also shows internal topics)
  describe [NAME ...]    partitions (leader, epoch, replicas, ISR, start/end offsets) and
                         configs with their source; all topics when no NAME is given
  delete NAME ...        delete topics and their data
  alter-config NAME      change a topic's configs (IncrementalAlterConfigs)
        --set key=value           set a config, repeatable
        --delete key              remove an override (back to the broker default), repeatable

Common flags:
  --bootstrap host:port[,host:port]  brokers to contact (default 127.0.0.1:9092; env STRATA_BOOTSTRAP)
  --timeout duration                 give up after this long (default 30s)
`

// runTopic implements `strata topic …` with franz-go's kadm, so it works
// against Strata or any Kafka cluster.
func runTopic(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topicUsage)
		return 2
	}
	cmd, args := args[0], args[1:]
	if cmd == "help" || wantsHelp([]string{cmd}) || wantsHelp(args) {
		fmt.Fprint(stdout, topicUsage)
		return 0
	}
	t := &topicCmd{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("strata topic "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, topicUsage) }
	bootstrap := "127.0.0.1:9092"
	if v, ok := os.LookupEnv("STRATA_BOOTSTRAP"); ok && v != "" {
		bootstrap = v
	}
	fs.StringVar(&bootstrap, "bootstrap", bootstrap, "")
	fs.DurationVar(&t.timeout, "timeout", 30*time.Second, "")

	var exec func(ctx context.Context, adm *kadm.Client, names []string) error
	minNames, maxNames := 1, -1
	switch cmd {
	case "create":
		partitions := fs.Int("partitions", -1, "")
		rf := fs.Int("replication-factor", -1, "")
		var configs kvFlag
		fs.Var(&configs, "config", "")
		exec = func(ctx context.Context, adm *kadm.Client, names []string) error {
			if *partitions != -1 && (*partitions < 1 || *partitions > math.MaxInt32) {
				return usageErr{fmt.Errorf("invalid value %d for --partitions: must be -1 or ≥ 1", *partitions)}
			}
			if *rf != -1 && (*rf < 1 || *rf > math.MaxInt16) {
				return usageErr{fmt.Errorf("invalid value %d for --replication-factor: must be -1 or between 1 and %d", *rf, math.MaxInt16)}
			}
			return t.create(ctx, adm, names, int32(*partitions), int16(*rf), configs.m)
		}
	case "list":
		internal := fs.Bool("internal", false, "")
		minNames, maxNames = 0, 0
		exec = func(ctx context.Context, adm *kadm.Client, _ []string) error { return t.list(ctx, adm, *internal) }
	case "describe":
		minNames = 0
		exec = t.describe
	case "delete":
		exec = t.delete
	case "alter-config", "alter-configs":
		var set kvFlag
		var del listFlag
		fs.Var(&set, "set", "")
		fs.Var(&del, "delete", "")
		maxNames = 1
		exec = func(ctx context.Context, adm *kadm.Client, names []string) error {
			if len(set.m) == 0 && len(del) == 0 {
				return usageErr{errors.New("alter-config needs at least one --set key=value or --delete key")}
			}
			return t.alterConfig(ctx, adm, names[0], set, del)
		}
	default:
		fmt.Fprintf(stderr, "strata topic: unknown command %q\n\n%s", cmd, topicUsage)
		return 2
	}

	names, err := parseInterleaved(fs, args)
	if err != nil {
		return 2 // the flag package has printed the error and usage
	}
	if len(names) < minNames || (maxNames >= 0 && len(names) > maxNames) {
		switch {
		case maxNames == 0:
			fmt.Fprintf(stderr, "strata topic %s: takes no topic names\n", cmd)
		case maxNames == 1:
			fmt.Fprintf(stderr, "strata topic %s: needs exactly one topic name\n", cmd)
		default:
			fmt.Fprintf(stderr, "strata topic %s: needs a topic name\n", cmd)
		}
		return 2
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(splitList(bootstrap)...))
	if err != nil {
		fmt.Fprintf(stderr, "strata topic %s: %v\n", cmd, err)
		return 2
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	if err := exec(ctx, adm, names); err != nil {
		fmt.Fprintf(stderr, "strata topic %s: %v\n", cmd, err)
		var ue usageErr
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type topicCmd struct {
	stdout, stderr io.Writer
	timeout        time.Duration
}

// usageErr marks an error in the command line (exit 2, not 1).
type usageErr struct{ error }

func (t *topicCmd) create(ctx context.Context, adm *kadm.Client, names []string, partitions int32, rf int16, configs map[string]*string) error {
	resps, err := adm.CreateTopics(ctx, partitions, rf, configs, names...)
	if err != nil {
		return err
	}
	var failed int
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			fmt.Fprintf(t.stderr, "topic %s: %s\n", r.Topic, errText(r.Err, r.ErrMessage))
			failed++
			continue
		}
		fmt.Fprintf(t.stdout, "created topic %s (partitions %d, replication factor %d, id %s)\n",
			r.Topic, r.NumPartitions, r.ReplicationFactor, r.ID)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d topics not created", failed, len(names))
	}
	return nil
}

func (t *topicCmd) list(ctx context.Context, adm *kadm.Client, internal bool) error {
	var (
		tds kadm.TopicDetails
		err error
	)
	if internal {
		tds, err = adm.ListTopicsWithInternal(ctx)
	} else {
		tds, err = adm.ListTopics(ctx)
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(t.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICAS\tID\tERROR")
	for _, td := range tds.Sorted() {
		e := ""
		if td.Err != nil {
			e = td.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", td.Topic, len(td.Partitions), td.Partitions.NumReplicas(), td.ID, e)
	}
	return tw.Flush()
}

func (t *topicCmd) describe(ctx context.Context, adm *kadm.Client, names []string) error {
	tds, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return err
	}
	var ok []string
	var failed int
	for _, td := range tds.Sorted() {
		if td.Err != nil {
			fmt.Fprintf(t.stderr, "topic %s: %v\n", td.Topic, td.Err)
			failed++
			continue
		}
		ok = append(ok, td.Topic)
	}
	var starts, ends kadm.ListedOffsets
	var cfgs kadm.ResourceConfigs
	if len(ok) > 0 {
		// Offsets and configs are best effort: the partition table is the
		// main answer, and an old broker may lack DescribeConfigs.
		starts, _ = adm.ListStartOffsets(ctx, ok...)
		ends, _ = adm.ListEndOffsets(ctx, ok...)
		if cfgs, err = adm.DescribeTopicConfigs(ctx, ok...); err != nil {
			fmt.Fprintf(t.stderr, "describe configs: %v\n", err)
		}
	}
	for i, name := range ok {
		td := tds[name]
		if i > 0 {
			fmt.Fprintln(t.stdout)
		}
		fmt.Fprintf(t.stdout, "Topic: %s\tID: %s\tPartitions: %d\tReplication factor: %d\n",
			td.Topic, td.ID, len(td.Partitions), td.Partitions.NumReplicas())
		tw := tabwriter.NewWriter(t.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tSTART\tEND\tERROR")
		for _, p := range td.Partitions.Sorted() {
			e := ""
			if p.Err != nil {
				e = p.Err.Error()
			}
			fmt.Fprintf(tw, "  %d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Partition, p.Leader, p.LeaderEpoch,
				int32s(p.Replicas), int32s(p.ISR), offsetText(starts, name, p.Partition), offsetText(ends, name, p.Partition), e)
		}
		tw.Flush()
		for _, rc := range cfgs {
			if rc.Name != name {
				continue
			}
			if rc.Err != nil {
				fmt.Fprintf(t.stdout, "Configs: %s\n", errText(rc.Err, rc.ErrMessage))
				continue
			}
			fmt.Fprintln(t.stdout, "Configs:")
			cs := slices.Clone(rc.Configs)
			slices.SortFunc(cs, func(a, b kadm.Config) int { return strings.Compare(a.Key, b.Key) })
			tw := tabwriter.NewWriter(t.stdout, 0, 4, 2, ' ', 0)
			for _, c := range cs {
				v := c.MaybeValue()
				if c.Sensitive {
					v = "(sensitive)"
				}
				fmt.Fprintf(tw, "  %s=%s\t(%s)\n", c.Key, v, sourceText(c.Source))
			}
			tw.Flush()
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d topics could not be described", failed)
	}
	return nil
}

func (t *topicCmd) delete(ctx context.Context, adm *kadm.Client, names []string) error {
	resps, err := adm.DeleteTopics(ctx, names...)
	if err != nil {
		return err
	}
	var failed int
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			fmt.Fprintf(t.stderr, "topic %s: %s\n", r.Topic, errText(r.Err, r.ErrMessage))
			failed++
			continue
		}
		fmt.Fprintf(t.stdout, "deleted topic %s\n", r.Topic)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d topics not deleted", failed, len(names))
	}
	return nil
}

func (t *topicCmd) alterConfig(ctx context.Context, adm *kadm.Client, name string, set kvFlag, del listFlag) error {
	var ops []kadm.AlterConfig
	for _, k := range set.keys {
		ops = append(ops, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: set.m[k]})
	}
	for _, k := range del {
		if _, dup := set.m[k]; dup {
			return usageErr{fmt.Errorf("%s is both set and deleted", k)}
		}
		ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	resps, err := adm.AlterTopicConfigs(ctx, ops, name)
	if err != nil {
		return err
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("topic %s: %s", r.Name, errText(r.Err, r.ErrMessage))
		}
	}
	fmt.Fprintf(t.stdout, "altered configs of topic %s (%d set, %d deleted)\n", name, len(set.keys), len(del))
	return nil
}

// parseInterleaved parses flags that may come before or after positional
// arguments (`create demo --partitions 3`), which the flag package alone
// does not allow. Everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first non-flag or right after "--".
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// kvFlag collects repeated key=value flags, keeping the order given.
type kvFlag struct {
	keys []string
	m    map[string]*string
}

func (f *kvFlag) String() string {
	if f == nil {
		return ""
	}
	var parts []string
	for _, k := range f.keys {
		parts = append(parts, k+"="+*f.m[k])
	}
	return strings.Join(parts, ",")
}

func (f *kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if f.m == nil {
		f.m = map[string]*string{}
	}
	if _, dup := f.m[k]; dup {
		return fmt.Errorf("%s given twice", k)
	}
	f.keys = append(f.keys, k)
	f.m[k] = &v
	return nil
}

// listFlag collects a repeated flag's values.
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }
func (f *listFlag) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*f = append(*f, s)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func errText(err error, msg string) string {
	if msg != "" && !strings.Contains(err.Error(), msg) {
		return err.Error() + ": " + msg
	}
	return err.Error()
}

func int32s(v []int32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func offsetText(lo kadm.ListedOffsets, topic string, p int32) string {
	o, ok := lo.Lookup(topic, p)
	if !ok || o.Err != nil {
		return "?"
	}
	return fmt.Sprint(o.Offset)
}

// sourceText shortens Kafka's config source names.
func sourceText(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "broker"
	case kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "broker (dynamic)"
	}
	return strings.ToLower(s.String())
}
