/** One part of the report (a job's output found in the folder): its piece of the index and its counts. */
export interface Section {
  name: string;
  title: string;
  /** HTML for the index page (already escaped). */
  html: string;
  counts: Record<string, number>;
}
