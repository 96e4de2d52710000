-- Timers of time triggers and occurrences of schedules.
SELECT 1;
