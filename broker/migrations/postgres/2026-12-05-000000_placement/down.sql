-- The placement written by up.sql cannot be told from the fields as sent; nothing to undo.
SELECT 1;
