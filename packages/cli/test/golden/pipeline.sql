-- psql 18 pipelines: queued statements, flush requests, partial and full reads, counters.
create table items (id int primary key, name text);
\startpipeline
insert into items values (1, 'one');
insert into items values (2, 'two') returning id;
select $1::int * 10 as tens \bind 4 \sendpipeline
\echo commands :PIPELINE_COMMAND_COUNT syncs :PIPELINE_SYNC_COUNT results :PIPELINE_RESULT_COUNT
\flushrequest
\echo commands :PIPELINE_COMMAND_COUNT syncs :PIPELINE_SYNC_COUNT results :PIPELINE_RESULT_COUNT
\getresults 1
\echo results :PIPELINE_RESULT_COUNT
\getresults
select name from items order by id;
\syncpipeline
\echo commands :PIPELINE_COMMAND_COUNT syncs :PIPELINE_SYNC_COUNT results :PIPELINE_RESULT_COUNT
select count(*) as n from items \parse count_items
\bind_named count_items \sendpipeline
\close_prepared count_items
select $1::text as echoed \bind 'five' \sendpipeline
\endpipeline
\echo commands :PIPELINE_COMMAND_COUNT syncs :PIPELINE_SYNC_COUNT results :PIPELINE_RESULT_COUNT
\startpipeline
\syncpipeline
\syncpipeline
\getresults 2
\endpipeline
select 'after the pipeline' as done;
