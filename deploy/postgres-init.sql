-- Run once by the postgres image on an empty volume: the databases of the optional
-- n8n and twenty profiles, owned by the same user as the agent's.
CREATE DATABASE n8n;
CREATE DATABASE twenty;
