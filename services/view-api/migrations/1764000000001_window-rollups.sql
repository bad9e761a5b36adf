-- Up Migration
-- Totals per key over coarser time buckets (ten minutes, an hour, a day: grain_seconds), maintained by the projection in the
-- same transaction as the windows they sum, from the change of each window (new values minus the ones replaced),
-- so that a top-N over a long range reads a few buckets per key instead of every window.
create table window_rollups (
  dimension text not null check (dimension in ('entity', 'category')),
  grain_seconds integer not null,
  bucket_start timestamptz not null,
  key text not null,
  count bigint not null,
  sum double precision not null,
  windows bigint not null,
  primary key (dimension, grain_seconds, bucket_start, key)
);

insert into window_rollups (dimension, grain_seconds, bucket_start, key, count, sum, windows)
select w.dimension, g.seconds, to_timestamp(floor(extract(epoch from w.window_start) / g.seconds) * g.seconds), w.key, sum(w.count), sum(w.sum), count(*)
from window_aggregates w cross join (values (600), (3600), (86400)) as g(seconds)
group by 1, 2, 3, 4;

-- Down Migration
drop table window_rollups;
