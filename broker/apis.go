package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// apis is every API this broker implements, with the version range it
// advertises in ApiVersions. Every version from minVersion up works.
// Record batches are magic v2 only, hence Produce ≥ 3 and Fetch ≥ 4.
var apis = []api{
	{kmsg.Produce.Int16(), 3, 11, handleProduce},
	{kmsg.Fetch.Int16(), 4, 16, handleFetch},
	{kmsg.ListOffsets.Int16(), 1, 8, handleListOffsets},
	{kmsg.Metadata.Int16(), 0, 12, handleMetadata},
	{kmsg.OffsetCommit.Int16(), 0, 9, handleOffsetCommit},
	{kmsg.OffsetFetch.Int16(), 0, 9, handleOffsetFetch},
	{kmsg.FindCoordinator.Int16(), 0, 6, handleFindCoordinator},
	{kmsg.JoinGroup.Int16(), 0, 9, handleJoinGroup},
	{kmsg.Heartbeat.Int16(), 0, 4, handleHeartbeat},
	{kmsg.LeaveGroup.Int16(), 0, 5, handleLeaveGroup},
	{kmsg.SyncGroup.Int16(), 0, 5, handleSyncGroup},
	{kmsg.DescribeGroups.Int16(), 0, 6, handleDescribeGroups},
	{kmsg.ListGroups.Int16(), 0, 5, handleListGroups},
	{kmsg.ApiVersions.Int16(), 0, 4, handleAPIVersions},
	{kmsg.CreateTopics.Int16(), 0, 7, handleCreateTopics},
	{kmsg.DeleteTopics.Int16(), 0, 6, handleDeleteTopics},
	{kmsg.DeleteRecords.Int16(), 0, 2, handleDeleteRecords},
	{kmsg.InitProducerID.Int16(), 0, 4, handleInitProducerID},
	{kmsg.OffsetForLeaderEpoch.Int16(), 0, 4, handleOffsetForLeaderEpoch},
	{kmsg.DescribeConfigs.Int16(), 0, 4, handleDescribeConfigs},
	{kmsg.AlterConfigs.Int16(), 0, 2, handleAlterConfigs},
	{kmsg.CreatePartitions.Int16(), 0, 3, handleCreatePartitions},
	{kmsg.DeleteGroups.Int16(), 0, 3, handleDeleteGroups},
	{kmsg.IncrementalAlterConfigs.Int16(), 0, 1, handleIncrementalAlterConfigs},
	{kmsg.OffsetDelete.Int16(), 0, 0, handleOffsetDelete},
	{kmsg.DescribeCluster.Int16(), 0, 1, handleDescribeCluster},
}

// apiByKey indexes apis by key for dispatch.
var apiByKey = func() map[int16]*api {
	m := make(map[int16]*api, len(apis))
	for i := range apis {
		m[apis[i].key] = &apis[i]
	}
	return m
}()
