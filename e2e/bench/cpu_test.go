package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stratalog/strata/internal/harness"
)

// cpuMeter attributes CPU time to the phases of the run: the broker's (from
// /proc/<pid>/stat), this test process's, i.e. the franz-go clients'
// (getrusage), and the whole machine's busy time (/proc/stat). The machine
// figure shows how much of the CPU other processes took: on a shared
// machine a low throughput with a busy machine and a modest broker share
// means the broker was starved, not slow.
type cpuMeter struct {
	br                    *harness.Broker
	at                    time.Time
	broker, self, machine time.Duration
}

// cpuShare is CPU time per wall-clock second, in cores, over a lap; and
// brokerSeconds, the broker's CPU time in the lap.
type cpuShare struct {
	broker, clients, machine float64
	brokerSeconds            float64
}

// msPerMiB is the broker's CPU milliseconds per MiB moved in the lap: a
// cost that, unlike throughput, hardly depends on what else the machine
// runs.
func (c cpuShare) msPerMiB(bytes int64) float64 {
	if bytes <= 0 {
		return 0
	}
	return c.brokerSeconds * 1000 / (float64(bytes) / mib)
}

func (c cpuShare) String() string {
	return fmt.Sprintf("%.2f + %.2f / %.2f", c.broker, c.clients, c.machine)
}

func newCPUMeter(br *harness.Broker) *cpuMeter {
	m := &cpuMeter{br: br}
	m.lap()
	return m
}

// lap returns the CPU shares since the previous lap. A figure that cannot
// be read is reported as zero: these numbers explain the table, they do
// not decide anything.
func (m *cpuMeter) lap() cpuShare {
	now := time.Now()
	var broker, self time.Duration
	if u, s, err := m.br.CPUTime(); err == nil {
		broker = u + s
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	machine, _ := machineBusy()
	wall := now.Sub(m.at).Seconds()
	share := cpuShare{
		broker:  (broker - m.broker).Seconds() / wall,
		clients: (self - m.self).Seconds() / wall,
		machine: (machine - m.machine).Seconds() / wall,

		brokerSeconds: (broker - m.broker).Seconds(),
	}
	m.at, m.broker, m.self, m.machine = now, broker, self, machine
	return share
}

// machineBusy is the CPU time all CPUs spent not idle (idle and iowait
// excluded; steal included, since a stolen cycle is not ours either) since
// boot, from the "cpu" line of /proc/stat in USER_HZ (100 per second) ticks.
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var busy int64
	// user nice system idle iowait irq softirq steal [guest guest_nice,
	// already counted in user and nice]
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return time.Duration(busy) * (time.Second / 100), nil
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
