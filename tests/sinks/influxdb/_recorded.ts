/**
 * Answers recorded from the real servers with curl, status and body, for
 * the InfluxDB sink's unit tests (see the module doc of
 * sinks/influxdb/classify.ts).
 *
 * @module
 */

/** What InfluxDB 1.6.7 answered, status and body, as recorded with curl. */
export const RECORDED = {
  typeConflict: [
    400,
    '{"error":"partial write: field type conflict: input field \\"v\\" on measurement \\"m\\" is type string, already exists as type float dropped=1"}',
  ],
  typeConflictInBody: [400, '{"error":"field type conflict"}'],
  timeField: [
    400,
    '{"error":"partial write: invalid field name: input field \\"time\\" on measurement \\"m\\" is invalid dropped=1"}',
  ],
  beyondRetention: [400, '{"error":"partial write: points beyond retention policy dropped=1"}'],
  maxValuesPerTag: [
    400,
    '{"error":"partial write: max-values-per-tag limit exceeded (3/3): measurement=\\"card\\" tag=\\"ip\\" value=\\"4\\" dropped=1"}',
  ],
  maxSeries: [
    400,
    '{"error":"partial write: max-series-per-database limit exceeded: (6) dropped=5"}',
  ],
  unparsable: [400, '{"error":"unable to parse \'garbage\': missing fields"}'],
  partialUnparsable: [
    400,
    '{"error":"partial write: unable to parse \'garbage\': missing fields dropped=0"}',
  ],
  badGzip: [400, '{"error":"unexpected EOF"}'],
  tooLarge: [413, '{"error":"Request Entity Too Large"}'],
  databaseNotFound: [404, '{"error":"database not found: \\"nodb\\""}'],
  noCredentials: [401, '{"error":"unable to parse authentication credentials"}'],
  wrongPassword: [401, '{"error":"authorization failed"}'],
  mayNotWrite: [
    403,
    '{"error":"\\"writer\\" user is not authorized to write to database \\"y\\""}',
  ],
  policyNotFound: [500, '{"error":"retention policy not found: autogen"}'],
  noApiV2: [404, "404 page not found\n"],
  createOk: [200, '{"results":[{"statement_id":0}]}'],
  createInvalidName: [200, '{"results":[{"statement_id":0,"error":"invalid name"}]}'],
  createNotAdmin: [
    403,
    '{"error":"error authorizing query: writer not authorized to execute statement \'CREATE DATABASE x\', requires admin privilege"}',
  ],
  showDatabasesWriter: [
    200,
    '{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["x"]]}]}]}',
  ],
  showDatabasesNone: [
    200,
    '{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"]}]}]}',
  ],
} as const satisfies Record<string, readonly [number, string]>;

/** What InfluxDB 2.7.12 answered to /api/v2/write, as recorded with curl. */
export const RECORDED_V2 = {
  partial: [
    422,
    '{"code":"unprocessable entity","message":"failure writing points to database: partial write: field type conflict: input field \\"v\\" on measurement \\"m\\" is type string, already exists as type float dropped=1"}',
  ],
  unparsable: [400, '{"code":"invalid","message":"unable to parse \'garbage\': missing fields"}'],
  reservedTag: [
    400,
    '{"code":"invalid","message":"unable to parse \'m,_field=x v=1 1700000004\': cannot use reserved tag key \\"_field\\""}',
  ],
  noOrg: [400, '{"code":"invalid","message":"Please provide either orgID or org"}'],
  unauthorized: [401, '{"code":"unauthorized","message":"unauthorized access"}'],
  bucketNotFound: [404, '{"code":"not found","message":"bucket \\"nob\\" not found"}'],
  orgNotFound: [404, '{"code":"not found","message":"organization name \\"noorg\\" not found"}'],
} as const satisfies Record<string, readonly [number, string]>;
