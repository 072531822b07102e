package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stratalog/strata/wire"
)

// apiTable is every API this broker implements, with the version range it
// advertises in ApiVersions (which the wire server answers itself from this
// table). Every version from MinVersion up works. Record batches are magic
// v2 only, hence Produce ≥ 3 and Fetch ≥ 4.
func (b *Broker) apiTable() []wire.API {
	return []wire.API{
		{Key: kmsg.Produce.Int16(), MinVersion: 3, MaxVersion: 11, Handle: b.handleProduce},
		{Key: kmsg.Fetch.Int16(), MinVersion: 4, MaxVersion: 16, Handle: b.handleFetch},
		{Key: kmsg.ListOffsets.Int16(), MinVersion: 1, MaxVersion: 8, Handle: b.handleListOffsets},
		{Key: kmsg.Metadata.Int16(), MinVersion: 0, MaxVersion: 12, Handle: b.handleMetadata},
		{Key: kmsg.OffsetCommit.Int16(), MinVersion: 0, MaxVersion: 9, Handle: b.handleOffsetCommit},
		{Key: kmsg.OffsetFetch.Int16(), MinVersion: 0, MaxVersion: 9, Handle: b.handleOffsetFetch},
		{Key: kmsg.FindCoordinator.Int16(), MinVersion: 0, MaxVersion: 6, Handle: b.handleFindCoordinator},
		{Key: kmsg.JoinGroup.Int16(), MinVersion: 0, MaxVersion: 9, Handle: b.handleJoinGroup},
		{Key: kmsg.Heartbeat.Int16(), MinVersion: 0, MaxVersion: 4, Handle: b.handleHeartbeat},
		{Key: kmsg.LeaveGroup.Int16(), MinVersion: 0, MaxVersion: 5, Handle: b.handleLeaveGroup},
		{Key: kmsg.SyncGroup.Int16(), MinVersion: 0, MaxVersion: 5, Handle: b.handleSyncGroup},
		{Key: kmsg.DescribeGroups.Int16(), MinVersion: 0, MaxVersion: 6, Handle: b.handleDescribeGroups},
		{Key: kmsg.ListGroups.Int16(), MinVersion: 0, MaxVersion: 5, Handle: b.handleListGroups},
		{Key: kmsg.CreateTopics.Int16(), MinVersion: 0, MaxVersion: 7, Handle: b.handleCreateTopics},
		{Key: kmsg.DeleteTopics.Int16(), MinVersion: 0, MaxVersion: 6, Handle: b.handleDeleteTopics},
		{Key: kmsg.DeleteRecords.Int16(), MinVersion: 0, MaxVersion: 2, Handle: b.handleDeleteRecords},
		{Key: kmsg.InitProducerID.Int16(), MinVersion: 0, MaxVersion: 4, Handle: b.handleInitProducerID},
		{Key: kmsg.OffsetForLeaderEpoch.Int16(), MinVersion: 0, MaxVersion: 4, Handle: b.handleOffsetForLeaderEpoch},
		{Key: kmsg.DescribeConfigs.Int16(), MinVersion: 0, MaxVersion: 4, Handle: b.handleDescribeConfigs},
		{Key: kmsg.AlterConfigs.Int16(), MinVersion: 0, MaxVersion: 2, Handle: b.handleAlterConfigs},
		{Key: kmsg.CreatePartitions.Int16(), MinVersion: 0, MaxVersion: 3, Handle: b.handleCreatePartitions},
		{Key: kmsg.DeleteGroups.Int16(), MinVersion: 0, MaxVersion: 3, Handle: b.handleDeleteGroups},
		{Key: kmsg.IncrementalAlterConfigs.Int16(), MinVersion: 0, MaxVersion: 1, Handle: b.handleIncrementalAlterConfigs},
		{Key: kmsg.OffsetDelete.Int16(), MinVersion: 0, MaxVersion: 0, Handle: b.handleOffsetDelete},
		{Key: kmsg.DescribeCluster.Int16(), MinVersion: 0, MaxVersion: 1, Handle: b.handleDescribeCluster},
	}
}
