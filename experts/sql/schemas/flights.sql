CREATE TABLE airports (
  code TEXT PRIMARY KEY,
  name TEXT,
  city TEXT,
  country TEXT
);

CREATE TABLE airlines (
  code TEXT PRIMARY KEY,
  name TEXT,
  country TEXT
);

CREATE TABLE flights (
  id INTEGER PRIMARY KEY,
  flight_number TEXT,
  airline_code TEXT REFERENCES airlines (code),
  origin TEXT REFERENCES airports (code),
  destination TEXT REFERENCES airports (code),
  departure_time TIMESTAMP,
  duration_min INTEGER,
  distance_km INTEGER,
  status TEXT
);

CREATE TABLE bookings (
  id INTEGER PRIMARY KEY,
  flight_id INTEGER REFERENCES flights (id),
  passenger_name TEXT,
  seat_class TEXT,
  price NUMERIC(10, 2),
  booked_on DATE
);
