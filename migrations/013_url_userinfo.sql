-- 013: API server URLs never hold credentials (issue 13, finding 6).
-- ferry now refuses user information (user:password@) in api_server; the
-- rows stored before lose theirs here, so that no GET, log line or
-- database dump shows it again. (ferry authenticates with the sealed
-- token or client certificate; basic authentication is not supported.)
UPDATE clusters
   SET api_server = regexp_replace(api_server, '^(https://)[^/?#]*@', '\1'),
       updated_at = now(),
       version = version + 1
 WHERE api_server ~ '^https://[^/?#]*@';
