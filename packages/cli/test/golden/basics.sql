-- Statements, variables, \echo and the extended protocol outside a pipeline.
\set table people
\set who 'O''Brien'
\echo creating :table for :'who' as :"table"
create table :table (id int primary key, name text not null, score numeric(6,2), note text);
insert into :table values (1, 'Ann', 12.5, null), (2, :'who', 7, E'two\nlines');
select id, name, score, note
  from :table
  order by id;

select 1 as a, 'x' as a;
select $$ dollar ; quoted $$ as d, 'semi;colon' as s /* a comment; with a semicolon */;
-- \bind with \g, and with a semicolon on a later line
select $1::int + $2::int as sum \bind 20 22 \g
select upper($1) as up \bind 'shout'
;
\bind 'again' \g
-- named statements
select name from people where id = $1 \parse by_id
\bind_named by_id 2 \g
\bind_named by_id 1 \g
\close_prepared by_id
\bind_named by_id 1 \g
\unset who
\echo who is now :who
\echo -n no newline
\echo
select count(*) as n from :table where score > 10;
update :table set score = score + 1 returning id, score;
delete from :table where id = 2;
select from :table;
select nonexistent from :table;
insert into :table values (1, 'dup', 0, null);
select 1/0 as boom;
\nosuchcommand
select 'still running' as status;
prepare triple(int) as select $1 * 3 as triple;
\bind_named triple 5 \g
\bind_named nope 1 \g
\startpipeline
\bind_named triple 7 \sendpipeline
\endpipeline
