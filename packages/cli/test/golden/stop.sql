-- ON_ERROR_STOP: an error read by \getresults with no sync after it stops the script.
\startpipeline
select 1 as one;
select 1/0 as boom;
\flushrequest
\getresults
select 'never printed' as x;
