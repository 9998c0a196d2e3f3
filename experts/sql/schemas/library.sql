CREATE TABLE authors (
  id INTEGER PRIMARY KEY,
  name TEXT,
  country TEXT,
  birth_year INTEGER
);

CREATE TABLE books (
  id INTEGER PRIMARY KEY,
  title TEXT,
  author_id INTEGER REFERENCES authors (id),
  genre TEXT,
  published_year INTEGER,
  pages INTEGER
);

CREATE TABLE members (
  id INTEGER PRIMARY KEY,
  name TEXT,
  city TEXT,
  membership TEXT,
  joined_on DATE
);

CREATE TABLE loans (
  id INTEGER PRIMARY KEY,
  book_id INTEGER REFERENCES books (id),
  member_id INTEGER REFERENCES members (id),
  loan_date DATE,
  due_date DATE,
  returned_on DATE
);
