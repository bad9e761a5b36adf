-- Up Migration
create table dead_letters (
  id bigserial primary key,
  -- Where the record sits in its dead-letter topic: a record indexed twice is one row.
  dlq_topic text not null,
  dlq_partition integer not null,
  dlq_offset bigint not null,
  source_topic text not null,
  source_partition integer,
  source_offset bigint,
  key bytea,
  value bytea,
  headers jsonb not null,
  error_code text not null,
  error_message text not null,
  stage text not null,
  failed_at timestamptz not null,
  status text not null default 'pending' check (status in ('pending', 'replayed', 'discarded')),
  -- dlq.replay.count of the record when it failed (a replayed record that failed again) plus our replays since.
  replay_count integer not null default 0,
  last_replay_id uuid,
  discard_reason text,
  indexed_at timestamptz not null default now(),
  unique (dlq_topic, dlq_partition, dlq_offset)
);
create index dead_letters_by_status on dead_letters (status, id);
create index dead_letters_by_topic on dead_letters (source_topic, id);
create index dead_letters_by_code on dead_letters (error_code, id);
create index dead_letters_by_stage on dead_letters (stage, id);
create index dead_letters_by_key on dead_letters (key, id);
create index dead_letters_by_time on dead_letters (failed_at, id);

create table dlq_offsets (
  consumer_group text not null,
  topic text not null,
  partition integer not null,
  next_offset bigint not null,
  updated_at timestamptz not null default now(),
  primary key (consumer_group, topic, partition)
);

create table replays (
  id uuid primary key,
  requested_by text not null,
  request jsonb not null,
  rate_per_sec integer not null,
  target_topic text,
  force boolean not null,
  status text not null check (status in ('running', 'completed', 'cancelled', 'failed')),
  selected integer not null,
  refused integer not null,
  error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table replay_items (
  replay_id uuid not null references replays (id),
  dead_letter_id bigint not null references dead_letters (id),
  position integer not null,
  target_topic text not null,
  target_partition integer not null,
  -- The partition's end before the record was produced: after a crash, the record is looked for from there.
  produce_from bigint,
  status text not null check (status in ('pending', 'producing', 'replayed', 'skipped', 'failed')),
  produced_offset bigint,
  error text,
  primary key (replay_id, dead_letter_id)
);
create index replay_items_open on replay_items (dead_letter_id) where status in ('pending', 'producing');

create table audit_log (
  id bigserial primary key,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  target text,
  count integer,
  details jsonb
);

-- Down Migration
drop table audit_log;
drop table replay_items;
drop table replays;
drop table dlq_offsets;
drop table dead_letters;
