package broker

// brokerMetrics (stub)
type brokerMetrics struct{}

func newBrokerMetrics() *brokerMetrics { return &brokerMetrics{} }
