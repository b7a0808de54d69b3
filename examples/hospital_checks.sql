-- Independent checks of a hospital run's database, written by hand in SQL from the rules' meaning (not generated
-- from the rule language). Each query counts the rows that break one rule or constraint; every count must be 0.
-- Run with: python bench/schema.py (or any SQLite client; dates are ISO text, so text order is date order).

-- check: orphan admissions (patient_id with no patient)
SELECT COUNT(*) FROM admissions a LEFT JOIN patients p ON p.patient_id = a.patient_id WHERE p.patient_id IS NULL;
-- check: orphan notes (admission_id with no admission)
SELECT COUNT(*) FROM notes n LEFT JOIN admissions a ON a.admission_id = n.admission_id WHERE a.admission_id IS NULL;
-- check: orphan attending doctors
SELECT COUNT(*) FROM admissions a LEFT JOIN doctors d ON d.doctor_id = a.attending_id WHERE d.doctor_id IS NULL;
-- check: orphan note authors
SELECT COUNT(*) FROM notes n LEFT JOIN doctors d ON d.doctor_id = n.author_id WHERE d.doctor_id IS NULL;
-- check: duplicate doctor ids or e-mail addresses
SELECT (SELECT COUNT(*) - COUNT(DISTINCT doctor_id) FROM doctors) + (SELECT COUNT(*) - COUNT(DISTINCT email) FROM doctors);
-- check: duplicate patient ids
SELECT COUNT(*) - COUNT(DISTINCT patient_id) FROM patients;
-- check: duplicate admission ids
SELECT COUNT(*) - COUNT(DISTINCT admission_id) FROM admissions;
-- check: duplicate note ids
SELECT COUNT(*) - COUNT(DISTINCT note_id) FROM notes;
-- check: duplicate medical record numbers
SELECT COUNT(*) - COUNT(DISTINCT mrn) FROM patients;
-- check: duplicate e-mail addresses (nulls allowed)
SELECT COUNT(email) - COUNT(DISTINCT email) FROM patients;
-- check: malformed medical record numbers
SELECT COUNT(*) FROM patients WHERE mrn NOT GLOB 'MRN-[0-9][0-9][0-9][0-9][0-9][0-9]';
-- check: malformed e-mail addresses
SELECT COUNT(*) FROM patients WHERE email IS NOT NULL AND (email NOT LIKE '%_@_%._%' OR length(email) > 254);
-- check: age outside 0-110
SELECT COUNT(*) FROM patients WHERE age < 0 OR age > 110;
-- check: admission count differs from the admissions
SELECT COUNT(*) FROM patients p WHERE p.n_admissions <> (SELECT COUNT(*) FROM admissions a WHERE a.patient_id = p.patient_id);
-- check: total cost differs from the sum of admission costs (to the cent)
SELECT COUNT(*) FROM patients p
WHERE abs(p.total_cost - (SELECT COALESCE(SUM(a.cost), 0) FROM admissions a WHERE a.patient_id = p.patient_id)) > 0.005;
-- check: length of stay differs from the dates
SELECT COUNT(*) FROM admissions WHERE length_of_stay <> CAST(julianday(discharged_on) - julianday(admitted_on) AS INTEGER);
-- check: patient without an admission
SELECT COUNT(*) FROM patients p WHERE NOT EXISTS (SELECT 1 FROM admissions a WHERE a.patient_id = p.patient_id);
-- check: minors with a smoking history
SELECT COUNT(*) FROM patients WHERE age < 18 AND smoking_status <> 'never';
-- check: diabetic patients under 10
SELECT COUNT(*) FROM patients WHERE diabetic = 1 AND age < 10;
-- check: admissions outside 2021-2024
SELECT COUNT(*) FROM admissions WHERE admitted_on < '2021-01-01' OR admitted_on > '2024-12-31';
-- check: discharge before admission
SELECT COUNT(*) FROM admissions WHERE discharged_on < admitted_on;
-- check: discharge after the extract's end
SELECT COUNT(*) FROM admissions WHERE discharged_on > '2024-12-31';
-- check: stays longer than 60 days
SELECT COUNT(*) FROM admissions WHERE julianday(discharged_on) - julianday(admitted_on) > 60;
-- check: unknown wards
SELECT COUNT(*) FROM admissions WHERE ward NOT IN ('general', 'respiratory', 'cardiology', 'icu');
-- check: intensive care stays under 5,000
SELECT COUNT(*) FROM admissions WHERE ward = 'icu' AND cost < 5000;
-- check: notes longer than 2,000 characters or empty
SELECT COUNT(*) FROM notes WHERE length(text) > 2000 OR length(trim(text)) = 0;
-- check: notes written before admission
SELECT COUNT(*) FROM notes n JOIN admissions a ON a.admission_id = n.admission_id WHERE n.written_on < a.admitted_on;
-- check: notes written after discharge
SELECT COUNT(*) FROM notes n JOIN admissions a ON a.admission_id = n.admission_id WHERE n.written_on > a.discharged_on;
