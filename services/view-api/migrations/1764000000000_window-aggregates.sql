-- Up Migration
create table window_aggregates (
  dimension text not null check (dimension in ('entity', 'category')),
  key text not null,
  window_start timestamptz not null,
  window_end timestamptz not null,
  count bigint not null,
  sum double precision not null,
  min double precision not null,
  max double precision not null,
  last_event_at timestamptz not null,
  is_final boolean not null,
  -- Only a record with a higher revision replaces a row: a re-delivered or out-of-order record never moves a window back.
  revision bigint not null,
  -- Where the current version came from, and a global sequence of changes for resuming live streams.
  source_partition integer not null,
  source_offset bigint not null,
  change_seq bigint not null,
  updated_at timestamptz not null default now(),
  primary key (dimension, key, window_start)
);

create sequence window_aggregates_change_seq;

-- Windows of a dimension in a time range (GET /v1/aggregates without key, GET /v1/top).
create index window_aggregates_by_time on window_aggregates (dimension, window_start, key) include (count, sum);
-- Changes after an SSE client's Last-Event-ID.
create index window_aggregates_by_change on window_aggregates (change_seq);

-- The consumed position of each partition of the aggregates topic, written in the same transaction as the rows.
create table projection_offsets (
  consumer_group text not null,
  topic text not null,
  partition integer not null,
  next_offset bigint not null,
  updated_at timestamptz not null default now(),
  primary key (consumer_group, topic, partition)
);

-- Down Migration
drop table projection_offsets;
drop index window_aggregates_by_change;
drop index window_aggregates_by_time;
drop sequence window_aggregates_change_seq;
drop table window_aggregates;
