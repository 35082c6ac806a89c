-- The import pattern: a prepared upsert executed in a pipeline inside a transaction.
create table imp (id int primary key, name text not null);
prepare s(int, text) as insert into imp values ($1, $2) on conflict (id) do update set name = excluded.name;
begin;
\startpipeline
execute s(1, 'a');
execute s(2, 'b');
execute s(1, 'a2');
\endpipeline
commit;
select * from imp order by id;
-- a duplicate key inside the pipeline: the block fails, COMMIT answers ROLLBACK
create table strict (id int primary key);
begin;
\startpipeline
insert into strict values (1);
insert into strict values (1);
insert into strict values (2);
\endpipeline
commit;
select count(*) as kept from strict;
