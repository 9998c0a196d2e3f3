CREATE TABLE departments (
  id INTEGER PRIMARY KEY,
  name TEXT,
  location TEXT,
  budget NUMERIC(12, 2)
);

CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  first_name TEXT,
  last_name TEXT,
  department_id INTEGER REFERENCES departments (id),
  manager_id INTEGER,
  job_title TEXT,
  salary NUMERIC(10, 2),
  hire_date DATE
);

CREATE TABLE projects (
  id INTEGER PRIMARY KEY,
  name TEXT,
  department_id INTEGER REFERENCES departments (id),
  status TEXT,
  start_date DATE,
  end_date DATE,
  budget NUMERIC(12, 2)
);

CREATE TABLE assignments (
  employee_id INTEGER REFERENCES employees (id),
  project_id INTEGER REFERENCES projects (id),
  role TEXT,
  hours INTEGER,
  PRIMARY KEY (employee_id, project_id)
);
