-- One database per service on the Compose PostgreSQL (runs once, when its volume is first created).
-- The server's own database (POSTGRES_DB, "quartet") is what `make up` hands to host-side tools.
CREATE DATABASE training;
CREATE DATABASE planning;
CREATE DATABASE rental;
CREATE DATABASE simulator;
