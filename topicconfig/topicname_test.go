package topicconfig

import (
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	for name, ok := range map[string]bool{
		"a":                      true,
		"Az09._-":                true,
		strings.Repeat("x", 249): true,
		"":                       false,
		".":                      false,
		"..":                     false,
		"...":                    true,
		strings.Repeat("x", 250): false,
		"a b":                    false,
		"a/b":                    false,
		"é":                      false,
	} {
		err := ValidateTopicName(name)
		if (err == nil) != ok {
			t.Errorf("ValidateTopicName(%.20q) = %v, want ok %v", name, err, ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "topic name") || !strings.Contains(err.Error(), "illegal")) {
			t.Errorf("ValidateTopicName(%.20q): message %q", name, err)
		}
	}
	if NormalizeTopicName("a.b_c") != NormalizeTopicName("a_b.c") || NormalizeTopicName("a.b") == NormalizeTopicName("ab") {
		t.Error("NormalizeTopicName: '.' and '_' are not read alike")
	}
}
