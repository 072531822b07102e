package config

import (
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// readYAML reads a flat YAML mapping of key → scalar. Values are kept as
// their source text (so 1073741824 is not rounded through a float and
// "CreateTime" needs no quotes) and parsed by the same code as flags and
// environment variables. Unknown keys, duplicate keys, nested values and
// nulls are errors that name the key and its line: a typo in a config file
// must not silently fall back to a default.
func readYAML(path string, known map[string]bool) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := map[string]string{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return out, nil // empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s: line %d: want a mapping of key: value", path, m.Line)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s: line %d: keys must be plain strings", path, k.Line)
		}
		key := k.Value
		if !known[key] {
			return nil, fmt.Errorf("config file %s: line %d: unknown key %q (keys are named like the flags of strata serve --help)", path, k.Line, key)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("config file %s: line %d: key %q given twice", path, k.Line, key)
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return nil, fmt.Errorf("config file %s: line %d: key %s needs a single value", path, v.Line, key)
		}
		out[key] = v.Value
	}
	return out, nil
}
