// Parse iCalendar text with ical.js (Thunderbird's parser) and print the fields Parley
// checks as JSON. stdin: one VCALENDAR, or a JSON array of VCALENDAR strings.
// Exit 3 when ical.js is not installed (npm install in ./js), so the test can skip.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(new URL("./js/package.json", import.meta.url));
let ICAL;
try {
  ICAL = require("ical.js");
} catch (err) {
  process.stderr.write(`ical.js not installed: ${err.message}\n`);
  process.exit(3);
}

function param(prop, name) {
  const value = prop.getParameter(name);
  return value === undefined ? null : value;
}

function describe(text) {
  const root = new ICAL.Component(ICAL.parse(text));
  const events = root.getAllSubcomponents("vevent").map((vevent) => {
    const time = (name) => {
      const value = vevent.getFirstPropertyValue(name);
      return value ? value.toJSDate().toISOString() : null;
    };
    const organizer = vevent.getFirstProperty("organizer");
    return {
      uid: vevent.getFirstPropertyValue("uid"),
      sequence: vevent.getFirstPropertyValue("sequence"),
      dtstamp: time("dtstamp"),
      dtstart: time("dtstart"),
      dtend: time("dtend"),
      dtstart_is_utc: vevent.getFirstPropertyValue("dtstart")?.zone?.tzid === "UTC",
      summary: vevent.getFirstPropertyValue("summary"),
      description: vevent.getFirstPropertyValue("description"),
      location: vevent.getFirstPropertyValue("location"),
      comment: vevent.getFirstPropertyValue("comment"),
      status: vevent.getFirstPropertyValue("status"),
      disallow_counter: vevent.getFirstPropertyValue("x-microsoft-disallow-counter"),
      organizer: organizer ? organizer.getFirstValue() : null,
      organizer_cn: organizer ? param(organizer, "cn") : null,
      attendees: vevent.getAllProperties("attendee").map((p) => ({
        value: p.getFirstValue(),
        cn: param(p, "cn"),
        partstat: param(p, "partstat"),
        rsvp: param(p, "rsvp"),
        role: param(p, "role"),
      })),
    };
  });
  return {
    method: root.getFirstPropertyValue("method"),
    prodid: root.getFirstPropertyValue("prodid"),
    version: root.getFirstPropertyValue("version"),
    events,
  };
}

const input = readFileSync(0, "utf8");
const texts = input.trimStart().startsWith("[") ? JSON.parse(input) : [input];
const results = texts.map((text) => {
  try {
    return describe(text);
  } catch (err) {
    return { error: String(err) };
  }
});
process.stdout.write(JSON.stringify(input.trimStart().startsWith("[") ? results : results[0]));
