-- The tool steps of an assistant message (one per model call of an agent turn): a JSON array
-- of {text, tool_calls: [{id, name, arguments, ok, result}]}; NULL for a plain answer.
ALTER TABLE messages ADD COLUMN steps TEXT;
