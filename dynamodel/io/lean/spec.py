"""What the lean transport knows of DynamoDB's API, copied from botocore's service model.

`OPERATIONS` names every operation (boto3 method name -> API name), `DATA_OPERATIONS` the ten
data-plane operations the lean transport sends itself with the top-level parameters each
accepts and requires, and `ERRORS` the modeled error shapes (class name -> error code and the
body members botocore copies into ``ClientError.response``). Keeping these as literals avoids
loading the service model (tens of milliseconds) at run time; ``tests/test_lean_unit.py``
checks them against the installed botocore's model, so a drift fails the tests.
"""

from __future__ import annotations

SERVICE = "dynamodb"
TARGET_PREFIX = "DynamoDB_20120810"
CONTENT_TYPE = "application/x-amz-json-1.0"

#: every DynamoDB operation: python method name -> API operation name
OPERATIONS: dict[str, str] = {
    "batch_execute_statement": "BatchExecuteStatement",
    "batch_get_item": "BatchGetItem",
    "batch_write_item": "BatchWriteItem",
    "create_backup": "CreateBackup",
    "create_global_table": "CreateGlobalTable",
    "create_table": "CreateTable",
    "delete_backup": "DeleteBackup",
    "delete_item": "DeleteItem",
    "delete_resource_policy": "DeleteResourcePolicy",
    "delete_table": "DeleteTable",
    "describe_backup": "DescribeBackup",
    "describe_continuous_backups": "DescribeContinuousBackups",
    "describe_contributor_insights": "DescribeContributorInsights",
    "describe_endpoints": "DescribeEndpoints",
    "describe_export": "DescribeExport",
    "describe_global_table": "DescribeGlobalTable",
    "describe_global_table_settings": "DescribeGlobalTableSettings",
    "describe_import": "DescribeImport",
    "describe_kinesis_streaming_destination": "DescribeKinesisStreamingDestination",
    "describe_limits": "DescribeLimits",
    "describe_table": "DescribeTable",
    "describe_table_replica_auto_scaling": "DescribeTableReplicaAutoScaling",
    "describe_time_to_live": "DescribeTimeToLive",
    "disable_kinesis_streaming_destination": "DisableKinesisStreamingDestination",
    "enable_kinesis_streaming_destination": "EnableKinesisStreamingDestination",
    "execute_statement": "ExecuteStatement",
    "execute_transaction": "ExecuteTransaction",
    "export_table_to_point_in_time": "ExportTableToPointInTime",
    "get_item": "GetItem",
    "get_resource_policy": "GetResourcePolicy",
    "import_table": "ImportTable",
    "list_backups": "ListBackups",
    "list_contributor_insights": "ListContributorInsights",
    "list_exports": "ListExports",
    "list_global_tables": "ListGlobalTables",
    "list_imports": "ListImports",
    "list_tables": "ListTables",
    "list_tags_of_resource": "ListTagsOfResource",
    "put_item": "PutItem",
    "put_resource_policy": "PutResourcePolicy",
    "query": "Query",
    "restore_table_from_backup": "RestoreTableFromBackup",
    "restore_table_to_point_in_time": "RestoreTableToPointInTime",
    "scan": "Scan",
    "tag_resource": "TagResource",
    "transact_get_items": "TransactGetItems",
    "transact_write_items": "TransactWriteItems",
    "untag_resource": "UntagResource",
    "update_continuous_backups": "UpdateContinuousBackups",
    "update_contributor_insights": "UpdateContributorInsights",
    "update_global_table": "UpdateGlobalTable",
    "update_global_table_settings": "UpdateGlobalTableSettings",
    "update_item": "UpdateItem",
    "update_kinesis_streaming_destination": "UpdateKinesisStreamingDestination",
    "update_table": "UpdateTable",
    "update_table_replica_auto_scaling": "UpdateTableReplicaAutoScaling",
    "update_time_to_live": "UpdateTimeToLive",
}

#: the operations the lean transport serialises itself: method -> (accepted, required) parameters
DATA_OPERATIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "get_item": (
        frozenset(
            [
                "AttributesToGet",
                "ConsistentRead",
                "ExpressionAttributeNames",
                "Key",
                "ProjectionExpression",
                "ReturnConsumedCapacity",
                "TableName",
            ]
        ),
        frozenset(["Key", "TableName"]),
    ),
    "put_item": (
        frozenset(
            [
                "ConditionExpression",
                "ConditionalOperator",
                "Expected",
                "ExpressionAttributeNames",
                "ExpressionAttributeValues",
                "Item",
                "ReturnConsumedCapacity",
                "ReturnItemCollectionMetrics",
                "ReturnValues",
                "ReturnValuesOnConditionCheckFailure",
                "TableName",
            ]
        ),
        frozenset(["Item", "TableName"]),
    ),
    "update_item": (
        frozenset(
            [
                "AttributeUpdates",
                "ConditionExpression",
                "ConditionalOperator",
                "Expected",
                "ExpressionAttributeNames",
                "ExpressionAttributeValues",
                "Key",
                "ReturnConsumedCapacity",
                "ReturnItemCollectionMetrics",
                "ReturnValues",
                "ReturnValuesOnConditionCheckFailure",
                "TableName",
                "UpdateExpression",
            ]
        ),
        frozenset(["Key", "TableName"]),
    ),
    "delete_item": (
        frozenset(
            [
                "ConditionExpression",
                "ConditionalOperator",
                "Expected",
                "ExpressionAttributeNames",
                "ExpressionAttributeValues",
                "Key",
                "ReturnConsumedCapacity",
                "ReturnItemCollectionMetrics",
                "ReturnValues",
                "ReturnValuesOnConditionCheckFailure",
                "TableName",
            ]
        ),
        frozenset(["Key", "TableName"]),
    ),
    "query": (
        frozenset(
            [
                "AttributesToGet",
                "ConditionalOperator",
                "ConsistentRead",
                "ExclusiveStartKey",
                "ExpressionAttributeNames",
                "ExpressionAttributeValues",
                "FilterExpression",
                "IndexName",
                "KeyConditionExpression",
                "KeyConditions",
                "Limit",
                "ProjectionExpression",
                "QueryFilter",
                "ReturnConsumedCapacity",
                "ScanIndexForward",
                "Select",
                "TableName",
            ]
        ),
        frozenset(["TableName"]),
    ),
    "scan": (
        frozenset(
            [
                "AttributesToGet",
                "ConditionalOperator",
                "ConsistentRead",
                "ExclusiveStartKey",
                "ExpressionAttributeNames",
                "ExpressionAttributeValues",
                "FilterExpression",
                "IndexName",
                "Limit",
                "ProjectionExpression",
                "ReturnConsumedCapacity",
                "ScanFilter",
                "Segment",
                "Select",
                "TableName",
                "TotalSegments",
            ]
        ),
        frozenset(["TableName"]),
    ),
    "batch_get_item": (
        frozenset(["RequestItems", "ReturnConsumedCapacity"]),
        frozenset(["RequestItems"]),
    ),
    "batch_write_item": (
        frozenset(["RequestItems", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"]),
        frozenset(["RequestItems"]),
    ),
    "transact_get_items": (
        frozenset(["ReturnConsumedCapacity", "TransactItems"]),
        frozenset(["TransactItems"]),
    ),
    "transact_write_items": (
        frozenset(
            [
                "ClientRequestToken",
                "ReturnConsumedCapacity",
                "ReturnItemCollectionMetrics",
                "TransactItems",
            ]
        ),
        frozenset(["TransactItems"]),
    ),
}

#: modeled errors: exception class name -> (error code, members copied from the body)
ERRORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BackupInUseException": ("BackupInUseException", ("message",)),
    "BackupNotFoundException": ("BackupNotFoundException", ("message",)),
    "ConditionalCheckFailedException": ("ConditionalCheckFailedException", ("message", "Item")),
    "ContinuousBackupsUnavailableException": (
        "ContinuousBackupsUnavailableException",
        ("message",),
    ),
    "DuplicateItemException": ("DuplicateItemException", ("message",)),
    "ExportConflictException": ("ExportConflictException", ("message",)),
    "ExportNotFoundException": ("ExportNotFoundException", ("message",)),
    "GlobalTableAlreadyExistsException": ("GlobalTableAlreadyExistsException", ("message",)),
    "GlobalTableNotFoundException": ("GlobalTableNotFoundException", ("message",)),
    "IdempotentParameterMismatchException": ("IdempotentParameterMismatchException", ("Message",)),
    "ImportConflictException": ("ImportConflictException", ("message",)),
    "ImportNotFoundException": ("ImportNotFoundException", ("message",)),
    "IndexNotFoundException": ("IndexNotFoundException", ("message",)),
    "InternalServerError": ("InternalServerError", ("message",)),
    "InvalidExportTimeException": ("InvalidExportTimeException", ("message",)),
    "InvalidRestoreTimeException": ("InvalidRestoreTimeException", ("message",)),
    "ItemCollectionSizeLimitExceededException": (
        "ItemCollectionSizeLimitExceededException",
        ("message",),
    ),
    "LimitExceededException": ("LimitExceededException", ("message",)),
    "PointInTimeRecoveryUnavailableException": (
        "PointInTimeRecoveryUnavailableException",
        ("message",),
    ),
    "PolicyNotFoundException": ("PolicyNotFoundException", ("message",)),
    "ProvisionedThroughputExceededException": (
        "ProvisionedThroughputExceededException",
        ("message", "ThrottlingReasons"),
    ),
    "ReplicaAlreadyExistsException": ("ReplicaAlreadyExistsException", ("message",)),
    "ReplicaNotFoundException": ("ReplicaNotFoundException", ("message",)),
    "ReplicatedWriteConflictException": ("ReplicatedWriteConflictException", ("message",)),
    "RequestLimitExceeded": ("RequestLimitExceeded", ("message", "ThrottlingReasons")),
    "ResourceInUseException": ("ResourceInUseException", ("message",)),
    "ResourceNotFoundException": ("ResourceNotFoundException", ("message",)),
    "TableAlreadyExistsException": ("TableAlreadyExistsException", ("message",)),
    "TableInUseException": ("TableInUseException", ("message",)),
    "TableNotFoundException": ("TableNotFoundException", ("message",)),
    "ThrottlingException": ("ThrottlingException", ("message", "throttlingReasons")),
    "TransactionCanceledException": (
        "TransactionCanceledException",
        ("Message", "CancellationReasons"),
    ),
    "TransactionConflictException": ("TransactionConflictException", ("message",)),
    "TransactionInProgressException": ("TransactionInProgressException", ("Message",)),
}
