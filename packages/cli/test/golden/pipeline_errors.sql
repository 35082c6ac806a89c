-- Errors in and around pipelines: a failing statement and the rest of its segment, the next
-- segment unaffected, misuse of the meta-commands, an aborted result read first.
create table t (id int primary key);
\sendpipeline
\syncpipeline
\endpipeline
\getresults
\startpipeline
\getresults
insert into t values (1);
select 1/0 as boom;
insert into t values (2);
\syncpipeline
insert into t values (3);
select 1 \g
\sendpipeline
\endpipeline
select id from t order by id;
\startpipeline
select 1/0 as early;
\flushrequest
\getresults
select 2 as after_error;
\endpipeline
\startpipeline
select * from missing_table;
select 3;
\endpipeline
select 'end' as fin;
