-- Up Migration
-- The exact bytes of the headers, when text cannot hold them (a NUL, bytes that are not UTF-8):
-- [[name, value], ...] in base64. `headers` then shows them escaped; a replay sends these.
alter table dead_letters add column raw_headers jsonb;
-- One entry per original record and stage: a dead letter sent twice (a sink that crashed between
-- sending it and committing its offsets) is indexed once.
create index dead_letters_by_origin on dead_letters (stage, source_topic, source_partition, source_offset);

-- Down Migration
drop index dead_letters_by_origin;
alter table dead_letters drop column raw_headers;
