// Package metrictest reads collected OpenTelemetry metrics in tests.
package metrictest
