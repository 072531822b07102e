package e2e

// Reading the broker's /metrics exposition (the Prometheus text format).

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// metricSum adds up the values of every sample in a Prometheus text exposition whose metric
// name contains all of the given substrings (case-insensitive) and returns the sum and the lines.
func metricSum(exposition string, substrings ...string) (float64, []string) {
	var sum float64
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		lname := strings.ToLower(name)
		match := true
		for _, s := range substrings {
			if !strings.Contains(lname, strings.ToLower(s)) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		rest := line[len(name):]
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(fields[0], "%g", &v); err == nil {
			sum += v
			lines = append(lines, line)
		}
	}
	return sum, lines
}

// promValue returns the value of the first series called name whose labels include every k="v"
// in labels, from a Prometheus text exposition; ok is false if there is none.
func promValue(exposition, name string, labels ...string) (v float64, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		series := ""
		if rest[0] == '{' {
			i := strings.LastIndexByte(rest, '}') // label values may hold spaces
			if i < 0 {
				continue
			}
			series, rest = rest[:i+1], rest[i+1:]
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		fields := strings.Fields(rest)
		if !match || len(fields) == 0 {
			continue
		}
		if f, err := strconv.ParseFloat(fields[0], 64); err == nil {
			return f, true
		}
	}
	return 0, false
}

// logRequestVersions logs, from /metrics, which API versions the broker served (so a client
// test's log shows the protocol versions that client really used).
func (p *strataProc) logRequestVersions(t testing.TB) {
	t.Helper()
	var seen []string
	sc := bufio.NewScanner(strings.NewReader(p.Metrics()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "strata_broker_requests_total{") {
			continue
		}
		api, version := labelValue(l, "api"), labelValue(l, "version")
		f := strings.Fields(l[strings.LastIndexByte(l, '}')+1:])
		if api != "" && len(f) > 0 {
			seen = append(seen, fmt.Sprintf("%s v%s ×%s", api, version, f[0]))
		}
	}
	t.Logf("requests served: %s", strings.Join(seen, ", "))
}

func labelValue(line, name string) string {
	i := strings.Index(line, "{"+name+`="`)
	if i < 0 {
		i = strings.Index(line, ","+name+`="`)
	}
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+3:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}
